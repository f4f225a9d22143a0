//! Generates the C header with cbindgen into OUT_DIR on every build of this crate (the header
//! test compares it with the checked-in `include/licensing.h`), and rewrites the checked-in
//! header only when asked: `LICENSING_WRITE_HEADER=1 cargo build -p licensing-client-c`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=LICENSING_WRITE_HEADER");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen could not generate licensing.h");
    bindings.write_to_file(out.join("licensing.h"));
    if std::env::var_os("LICENSING_WRITE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(dir.join("include/licensing.h"));
    }
}
