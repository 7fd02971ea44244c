//! Guards against a checked-in include/zookeeper_rs.h that no longer matches the Rust
//! functions it declares: the header is regenerated here, in memory, and must be identical.
//! Regenerate it with `ZKRS_WRITE_HEADER=1 cargo test -p zookeeper-ffi --test header`.

use std::path::Path;

#[test]
fn the_checked_in_header_matches_the_code() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let header_path = crate_dir.join("../include/zookeeper_rs.h");
    if std::env::var_os("ZKRS_WRITE_HEADER").is_some() {
        std::fs::write(&header_path, &generated).unwrap();
    }
    let checked_in = std::fs::read(&header_path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/zookeeper_rs.h is stale: run ZKRS_WRITE_HEADER=1 cargo test -p zookeeper-ffi --test header"
    );
}
