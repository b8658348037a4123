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
    let err = Config::load(None, vars_of(&[("RINGHUB_PING_INTERVL", "1s")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for RINGHUB_PING_INTERVL: unknown setting"
    );
    let err = Config::load(None, vars_of(&[("RINGHUB_SHARDS", "many")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for shards (RINGHUB_SHARDS): invalid digit found in string"
    );
    let err = Config::load(None, vars_of(&[("RINGHUB_ECHO_ENDPOINT", "maybe")])).unwrap_err();
    assert!(err.to_string().contains("expected true or false"), "{err}");
    let err = Config::load(None, vars_of(&[("RINGHUB_DRIVER", "fast")])).unwrap_err();
    assert!(err.to_string().contains("io_uring"), "{err}");
    let err = Config::load(None, vars_of(&[("RINGHUB_NAMESPACES", "chat")])).unwrap_err();
    assert!(err.to_string().contains("(RINGHUB_NAMESPACES)"), "{err}");
}

fn vars_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let owned = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    owned.collect()
}

/// A TOML file under the temp dir, removed when dropped.
struct TempToml(std::path::PathBuf);

impl TempToml {
    fn new(name: &str, text: &str) -> TempToml {
        let path = std::env::temp_dir().join(format!("ringhub-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempToml(path)
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn variable_strings_take_the_type_of_their_field() {
    let c = Config::load(
        None,
        vars_of(&[
            ("RINGHUB_JWT_SECRET", "123456"),
            ("RINGHUB_INSTANCE_ID", "7"),
            ("RINGHUB_SHARDS", " 4 "),
            ("RINGHUB_LISTEN", "127.0.0.1:1"),
            ("RINGHUB_ECHO_ENDPOINT", "yes"),
            ("RINGHUB_API_KEYS", "aa, bb,,cc "),
            ("RINGHUB_JWT_ISSUER", ""),
            ("RINGHUB_REDIS_URL", "redis://r:6379"),
            ("RINGHUB_DRIVER", "uring"),
            ("RINGHUB_MESSAGES_PER_SECOND", "0"),
        ]),
    )
    .unwrap();
    assert_eq!(c.jwt_secret, "123456");
    assert_eq!(c.instance_id, "7");
    assert_eq!(c.shards, 4);
    assert_eq!(c.listen.port(), 1);
    assert!(c.echo_endpoint);
    assert_eq!(c.api_keys, ["aa", "bb", "cc"]);
    assert_eq!(c.jwt_issuer, None);
    assert_eq!(c.redis_url.as_deref(), Some("redis://r:6379"));
    assert_eq!(c.driver, Driver::IoUring);
    assert_eq!(c.messages_per_second, 0);
    let c = Config::load(None, vars_of(&[("RINGHUB_DRIVER", "legacy")])).unwrap();
    assert_eq!(c.driver, Driver::Epoll);
    let origins = "https://a.example.com, https://*.b.example.com";
    let c = Config::load(None, vars_of(&[("RINGHUB_ALLOWED_ORIGINS", origins)])).unwrap();
    assert!(c.allowed_origins.allows("https://x.b.example.com"));
    assert!(c.allowed_origins.allows("https://a.example.com"));
    assert!(!c.allowed_origins.allows("https://b.example.com"));
    let bad = vars_of(&[("RINGHUB_ALLOWED_ORIGINS", "example.com")]);
    assert!(Config::load(None, bad).is_err());
}

#[test]
fn file_then_variables_then_flags() {
    let file = TempToml::new(
        "layers",
        "shards = 2\nlog = \"debug\"\nping_interval = \"3s\"\n[namespaces.chat]\npublic = true\n",
    );
    let vars = vars_of(&[
        ("RINGHUB_CONFIG", file.0.to_str().unwrap()),
        ("RINGHUB_SHARDS", "3"),
        ("RINGHUB_LOG", "warn"),
    ]);
    let flags = [("shards".to_string(), "4".to_string())];
    let c = Config::load_with_flags(None, vars, flags).unwrap();
    assert_eq!(c.shards, 4);
    assert_eq!(c.log, "warn");
    assert_eq!(c.ping_interval, Duration::from_secs(3));
    assert!(c.namespace("chat:1").public);
}

#[test]
fn from_text_folds_like_a_file() {
    let text = "shards = 2\nping_interval = \"3s\"\n[namespaces.chat]\npublic = true\n";
    let path = std::path::Path::new("fuzz.toml");
    let vars = vars_of(&[("RINGHUB_SHARDS", "3"), ("RINGHUB_CONFIG", "/nonexistent")]);
    let c = Config::from_text(path, text, vars, []).unwrap();
    assert_eq!(c.shards, 3);
    assert_eq!(c.ping_interval, Duration::from_secs(3));
    assert!(c.namespace("chat:1").public);
    let err = Config::from_text(path, "shards = [", [], []).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid config file fuzz.toml"),
        "{err}"
    );
}

#[test]
fn errors_name_the_file_variable_or_flag() {
    let file = TempToml::new("nested", "[namespaces.chat]\nhistory_ttl = \"soon\"\n");
    let err = Config::load(Some(file.0.clone()), [])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("invalid config file "), "{err}");
    assert!(err.contains("namespaces.chat.history_ttl: "), "{err}");
    let file = TempToml::new("typo", "ping_intervall = \"1s\"\n");
    let err = Config::load(Some(file.0.clone()), [])
        .unwrap_err()
        .to_string();
    assert!(err.ends_with(": ping_intervall: unknown setting"), "{err}");
    let flags = [("pingg".to_string(), "1s".to_string())];
    let err = Config::load_with_flags(None, [], flags).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for pingg (command line): unknown setting"
    );
    let flags = [("ping_interval".to_string(), "soon".to_string())];
    let err = Config::load_with_flags(None, [], flags).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("invalid value for ping_interval (command line): "));
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
    let vars = [("RINGHUB_RPC_URL".to_string(), "ftp://lobby/rpc".to_string())];
    let bad = Config::load(None, vars).unwrap();
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("expected http(s)://"), "{err}");
}

#[test]
fn trace_settings_from_env_and_bad_ones_refused() {
    let var = |k: &str, v: &str| (k.to_string(), v.to_string());
    let vars = [
        var("RINGHUB_OTLP_ENDPOINT", "http://collector:4318/v1/traces"),
        var("RINGHUB_TRACE_SAMPLE_RATIO", "0.25"),
        var("RINGHUB_TRACE_EXPORT_DELAY", "100ms"),
    ];
    let c = Config::load(None, vars).unwrap();
    c.validate().unwrap();
    assert_eq!(c.trace_sample_ratio, 0.25);
    assert_eq!(c.trace_export_delay, Duration::from_millis(100));
    assert_eq!(c.service_name, "ringhub");
    for (k, v, key) in [
        ("RINGHUB_TRACE_SAMPLE_RATIO", "1.5", "trace_sample_ratio"),
        ("RINGHUB_OTLP_ENDPOINT", "collector:4318", "otlp_endpoint"),
        (
            "RINGHUB_OTLP_ENDPOINT",
            "ftp://collector/v1/traces",
            "otlp_endpoint",
        ),
    ] {
        let bad = Config::load(None, [var(k, v)]).unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn unconfigured_namespaces_take_the_star_entry() {
    let c: Config = toml::from_str(
        "[namespaces.chat]\nhistory_size = 5\n[namespaces.\"*\"]\nclient_publish = true\n",
    )
    .unwrap();
    c.validate().unwrap();
    assert!(c.namespace("table:42").client_publish, "from \"*\"");
    assert!(
        c.namespace("lobby").client_publish,
        "the default namespace too"
    );
    assert!(
        !c.namespace("chat:1").client_publish,
        "a named namespace is its own"
    );
    assert!(c.keeps_history("chat:1") && !c.keeps_history("table:42"));
    let none = Config::default();
    assert!(!none.namespace("table:42").client_publish);
}

#[test]
fn redis_cluster_from_a_variable_and_not_beside_redis_url() {
    let vars = [(
        "RINGHUB_REDIS_CLUSTER",
        "redis+cluster://a:1,b:2, redis://c:3",
    )];
    let c = Config::load(None, vars_of(&vars)).unwrap();
    assert_eq!(
        c.redis_cluster,
        ["redis+cluster://a:1", "b:2", "redis://c:3"]
    );
    assert!(c.has_redis());
    c.validate().unwrap();
    let both = Config {
        redis_url: Some("redis://r:6379".into()),
        ..c.clone()
    };
    assert!(both
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not both"));
    let braces = Config {
        redis_prefix: "game{1}:".into(),
        ..c
    };
    assert!(braces.validate().is_err());
}
