//! The VM's environment as WASI hands it over (`environ_get`): `NAME=value` entries, each ended by
//! a NUL, back to back in one buffer. The adapter reads the buffer; this finds a variable in it.

/// The value of `name` in a WASI environment buffer; `None` when absent or not UTF-8.
pub fn lookup(buffer: &[u8], name: &str) -> Option<String> {
    buffer.split(|byte| *byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(name.as_bytes())?.strip_prefix(b"=")?;
        String::from_utf8(value.to_vec()).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test;

    const BUFFER: &[u8] = b"HOME=/root\0SCIM_EDGE_UPSTREAM_TOKEN=s3cr=t\0SCIM_EDGE=short\0EMPTY=\0";

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
    fn finds_a_variable_by_its_whole_name() {
        assert_eq!(lookup(BUFFER, "SCIM_EDGE_UPSTREAM_TOKEN").as_deref(), Some("s3cr=t"));
        assert_eq!(lookup(BUFFER, "SCIM_EDGE").as_deref(), Some("short"));
        assert_eq!(lookup(BUFFER, "HOME").as_deref(), Some("/root"));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
    fn a_prefix_or_an_absent_name_is_not_a_match() {
        assert_eq!(lookup(BUFFER, "SCIM"), None);
        assert_eq!(lookup(BUFFER, "HOM"), None);
        assert_eq!(lookup(BUFFER, "PATH"), None);
        assert_eq!(lookup(b"", "HOME"), None);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
    fn an_empty_value_is_set_and_invalid_utf8_is_not() {
        assert_eq!(lookup(BUFFER, "EMPTY").as_deref(), Some(""));
        assert_eq!(lookup(b"BAD=\xff\xfe\0", "BAD"), None);
    }
}
