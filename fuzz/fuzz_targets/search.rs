//! Fuzz target `search`: the properties are in `fuzz/props.rs`, shared with `tests/fuzz_regressions.rs`.
#![no_main]

#[path = "../props.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::tolerate_open(true);
    props::check_search(data);
});
