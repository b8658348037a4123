//! The deployment files agree with the hub: the ConfigMap's TOML is a valid configuration,
//! and a pod is given longer to stop than the drain it starts.

use std::time::Duration;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The indented block under `key: |` in a YAML file.
fn block(yaml: &str, key: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let head = lines.next().expect("the key");
    let indent = head.len() - head.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(|l| l.get(indent + 2..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn number_after(yaml: &str, key: &str) -> u64 {
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn configmap_toml_is_a_valid_configuration() {
    let toml = block(&read("k8s/base/configmap.yaml"), "ringhub.toml");
    let path = std::env::temp_dir().join(format!("ringhub-k8s-{}.toml", std::process::id()));
    std::fs::write(&path, &toml).unwrap();
    let config = ringhub::Config::load(Some(path.clone()), Vec::new()).expect("parses");
    config.validate().expect("validates");
    std::fs::remove_file(path).unwrap();
    assert!(config.namespaces.contains_key("table"));

    let deployment = read("k8s/base/deployment.yaml");
    let grace = number_after(&deployment, "terminationGracePeriodSeconds:");
    let pre_stop = number_after(&deployment, "seconds:");
    assert!(
        Duration::from_secs(grace) > config.drain_timeout + Duration::from_secs(pre_stop),
        "terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s + drain_timeout {:?}",
        config.drain_timeout
    );
}
