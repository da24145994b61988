//! Small text helpers shared by error messages. (Client text shown in an error detail goes
//! through `scim_error::shown`, the one bounded echo.)

/// `a, b, c`, as `join(", ")` writes it, without that generic code: the one list format of the
/// gateway's messages.
pub fn comma_join(items: &mut dyn Iterator<Item = &str>) -> String {
    let mut list = String::new();
    for (index, item) in items.enumerate() {
        if index > 0 {
            list.push_str(", ");
        }
        list.push_str(item);
    }
    list
}

/// [`comma_join`] of a slice.
pub fn comma_separated(items: &[&str]) -> String {
    comma_join(&mut items.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn lists_are_joined_with_a_comma_and_a_space() {
        assert_eq!(comma_separated(&[]), "");
        assert_eq!(comma_separated(&["a"]), "a");
        assert_eq!(comma_separated(&["a", "b", "c"]), ["a", "b", "c"].join(", "));
    }
}
