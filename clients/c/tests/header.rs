//! `include/licensing.h` is what cbindgen makes of the current source (build.rs generates it
//! into OUT_DIR on every build): a change to the ABI without regenerating the checked-in header
//! fails here. Regenerate with `LICENSING_WRITE_HEADER=1 cargo build -p licensing-client-c`.

#[test]
fn checked_in_header_matches_the_source() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/licensing.h"));
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/licensing.h");
    let checked_in = std::fs::read_to_string(path).expect("include/licensing.h");
    assert!(
        generated == checked_in,
        "include/licensing.h is out of date: run \
         LICENSING_WRITE_HEADER=1 cargo build -p licensing-client-c"
    );
    // Every export made it into the header.
    let source = include_str!("../src/lib.rs");
    for line in source.lines() {
        let Some(rest) = line.split("extern \"C\" fn ").nth(1) else {
            continue;
        };
        let name = rest.split('(').next().unwrap();
        assert!(
            checked_in.contains(&format!("{name}(")),
            "{name} is not in licensing.h"
        );
    }
}
