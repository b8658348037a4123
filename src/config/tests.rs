use super::*;

#[test]
fn defaults_follow_the_protocol() {
    let c = Config::default();
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.ping_interval, Duration::from_secs(25));
    assert_eq!(c.max_message_size, 65536);
    c.validate().unwrap();
}

#[test]
fn env_overrides_and_typos_are_refused() {
    let vars = [("RINGHUB_PING_INTERVAL".to_string(), "1s".to_string())];
    let c = Config::load(None, vars).unwrap();
    assert_eq!(c.ping_interval, Duration::from_secs(1));
    let harness = [("RINGHUB_REQUIRE_REDIS".to_string(), "1".to_string())];
    assert!(Config::load(None, harness).is_ok());
    let bad = [("RINGHUB_PING_INTERVL".to_string(), "1s".to_string())];
    assert!(Config::load(None, bad).is_err());
    let bad = [("RINGHUB_SHARDS".to_string(), "many".to_string())];
    assert!(Config::load(None, bad).is_err());
}

#[test]
fn toml_namespaces_and_durations() {
    let c: Config = toml::from_str(
        "ping_interval = \"500ms\"\n[namespaces.chat]\npublic = true\nhistory_ttl = \"24h\"\n",
    )
    .unwrap();
    assert_eq!(c.ping_interval, Duration::from_millis(500));
    assert!(c.namespace("chat:1").public);
    assert_eq!(
        c.namespace("chat:1").history_ttl,
        Some(Duration::from_secs(86400))
    );
    assert!(!c.namespace("table:1").public);
    assert!(toml::from_str::<Config>("ping_intervall = \"1s\"").is_err());
}

#[test]
fn rpc_backends_from_toml_and_env_and_bad_urls_refused() {
    let c: Config = toml::from_str(
        "rpc_url = \"http://lobby:7000/rpc\"\nrpc_timeout = \"2s\"\n[rpc_methods]\n\"game.*\" = \"http://game:7000/rpc\"\n",
    )
    .unwrap();
    assert_eq!(c.rpc_timeout, Duration::from_secs(2));
    assert_eq!(c.rpc_methods["game.*"], "http://game:7000/rpc");
    c.validate().unwrap();
    let vars = [(
        "RINGHUB_RPC_URL".to_string(),
        "https://lobby/rpc".to_string(),
    )];
    let bad = Config::load(None, vars).unwrap();
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("https is not supported"), "{err}");
}
