//! The Rust types of the binary protocol are generated from `proto/` and checked in
//! (`src/protocol/pb/ringhub.v1.rs`), so that building the hub needs neither `protoc` nor
//! a build script. This test generates them again with `protox` (a protobuf compiler in
//! Rust) and `prost-build`, and fails when the checked-in file differs: a `.proto` edited
//! without regenerating. `RINGHUB_REGEN_PROTO=1 cargo test --test proto_codegen` rewrites
//! the file.

use std::path::Path;

const FILES: &[&str] = &["ringhub/v1/client.proto", "ringhub/v1/hub.proto"];
const CHECKED_IN: &str = "src/protocol/pb/ringhub.v1.rs";

#[test]
fn generated_code_matches_proto() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(FILES, [root.join("proto")]).expect("proto/ compiles");
    let out = std::env::temp_dir().join(format!("ringhub-pb-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(fds)
        .expect("prost-build generates");
    let fresh = std::fs::read_to_string(out.join("ringhub.v1.rs")).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let path = root.join(CHECKED_IN);
    if std::env::var_os("RINGHUB_REGEN_PROTO").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "{CHECKED_IN} is not what proto/ generates: run \
         RINGHUB_REGEN_PROTO=1 cargo test --test proto_codegen and commit the result"
    );
}
