use std::path::PathBuf;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"unit-test-secret";

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys")
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: serde_json::Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn claims(exp_in: i64) -> serde_json::Value {
    let now = unix_now() as i64;
    json!({"sub": "alice", "exp": now + exp_in, "channels": ["table:*"], "publish": ["chat:1"], "info": {"name": "A"}})
}

fn hs_verifier(config: &Config) -> Verifier {
    Verifier::new(config, SECRET).unwrap()
}

#[test]
fn hs_family_and_claims() {
    let v = hs_verifier(&Config::default());
    for alg in HS {
        let t = sign(alg, None, &EncodingKey::from_secret(SECRET), claims(60));
        let id = v.verify(&t).unwrap();
        assert_eq!(id.user(), "alice");
        assert_eq!(id.channels().collect::<Vec<_>>(), vec!["table:*"]);
        assert_eq!(id.publish().collect::<Vec<_>>(), vec!["chat:1"]);
        assert_eq!(id.info(), r#"{"name":"A"}"#);
    }
}

#[test]
fn refusals() {
    let v = hs_verifier(&Config::default());
    let key = EncodingKey::from_secret(SECRET);
    assert!(matches!(v.verify("not.a.token"), Err(AuthError::Malformed)));
    let expired = sign(Algorithm::HS256, None, &key, claims(-60));
    assert!(matches!(v.verify(&expired), Err(AuthError::Expired)));
    // within the 5 s leeway an expired token still passes
    let just_expired = sign(Algorithm::HS256, None, &key, claims(-2));
    assert!(v.verify(&just_expired).is_ok());
    let wrong = sign(
        Algorithm::HS256,
        None,
        &EncodingKey::from_secret(b"other"),
        claims(60),
    );
    assert!(matches!(v.verify(&wrong), Err(AuthError::BadSignature)));
    let now = unix_now();
    let future = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "a", "exp": now + 600, "nbf": now + 300}),
    );
    assert!(matches!(v.verify(&future), Err(AuthError::NotYetValid)));
    let no_sub = sign(Algorithm::HS256, None, &key, json!({"exp": now + 60}));
    assert!(v.verify(&no_sub).is_err());
    let no_exp = sign(Algorithm::HS256, None, &key, json!({"sub": "a"}));
    assert!(v.verify(&no_exp).is_err());
    let long_sub = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "x".repeat(129), "exp": now + 60}),
    );
    assert!(matches!(v.verify(&long_sub), Err(AuthError::Claims(_))));
    let big_info = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "a", "exp": now + 60, "info": {"x": "y".repeat(1100)}}),
    );
    assert!(matches!(v.verify(&big_info), Err(AuthError::Claims(_))));
    // an RS token is refused when only a secret is configured
    let rsa =
        EncodingKey::from_rsa_pem(&std::fs::read(keys_dir().join("rsa.key")).unwrap()).unwrap();
    let t = sign(Algorithm::RS256, None, &rsa, claims(60));
    assert!(matches!(v.verify(&t), Err(AuthError::NoKey)));
}

#[test]
fn issuer_and_audience() {
    let config = Config {
        jwt_issuer: Some("game".into()),
        jwt_audience: Some("hub".into()),
        ..Config::default()
    };
    let v = hs_verifier(&config);
    let key = EncodingKey::from_secret(SECRET);
    let now = unix_now();
    let good = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "a", "exp": now + 60, "iss": "game", "aud": "hub"}),
    );
    assert!(v.verify(&good).is_ok());
    let bad = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "a", "exp": now + 60, "iss": "other", "aud": "hub"}),
    );
    assert!(matches!(
        v.verify(&bad),
        Err(AuthError::WrongIssuerOrAudience)
    ));
    let missing = sign(
        Algorithm::HS256,
        None,
        &key,
        json!({"sub": "a", "exp": now + 60}),
    );
    assert!(v.verify(&missing).is_err());
}

#[test]
fn public_keys_from_pem() {
    type Loader = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;
    let cases: [(&str, &[Algorithm], Loader); 4] = [
        (
            "rsa",
            &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
            ],
            EncodingKey::from_rsa_pem,
        ),
        ("ec256", &[Algorithm::ES256], EncodingKey::from_ec_pem),
        ("ec384", &[Algorithm::ES384], EncodingKey::from_ec_pem),
        ("ed", &[Algorithm::EdDSA], EncodingKey::from_ed_pem),
    ];
    for (name, algs, load) in cases {
        let config = Config {
            jwt_public_key: Some(keys_dir().join(format!("{name}.pub"))),
            ..Config::default()
        };
        let v = Verifier::new(&config, b"").unwrap();
        let key = load(&std::fs::read(keys_dir().join(format!("{name}.key"))).unwrap()).unwrap();
        for &alg in algs {
            let t = sign(alg, None, &key, claims(60));
            assert_eq!(v.verify(&t).unwrap().user(), "alice", "{name} {alg:?}");
        }
        // an HS token cannot pass without a secret (algorithm confusion)
        let hs = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET),
            claims(60),
        );
        assert!(v.verify(&hs).is_err());
    }
}

#[test]
fn jwks_kid_selects_the_key() {
    let config = Config {
        jwks_file: Some(keys_dir().join("jwks.json")),
        ..Config::default()
    };
    let v = Verifier::new(&config, b"").unwrap();
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(keys_dir().join("rsa.key")).unwrap()).unwrap();
    let t = sign(Algorithm::RS256, Some("test-rsa"), &key, claims(60));
    assert_eq!(v.verify(&t).unwrap().user(), "alice");
    let t = sign(Algorithm::RS256, Some("unknown"), &key, claims(60));
    assert!(matches!(v.verify(&t), Err(AuthError::NoKey)));
}

#[test]
fn minted_tokens_verify() {
    let opts = MintOptions {
        user: "bob".into(),
        ttl: 60,
        channels: vec!["a:*".into()],
        ..Default::default()
    };
    let id = hs_verifier(&Config::default())
        .verify(&mint(SECRET, &opts))
        .unwrap();
    assert_eq!(id.user(), "bob");
    assert_eq!(id.channels().collect::<Vec<_>>(), vec!["a:*"]);
    assert_eq!(id.info(), "{}");
}
