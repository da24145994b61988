//! Filters and PATCH paths: parsing, resolution against the schemas, and the canonical text.

use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

use crate::route::ResourceType;
use crate::scim::schema::ENTERPRISE_USER_URN;

fn user() -> &'static ResourceSchema {
    ResourceSchema::for_type(ResourceType::User)
}

fn group() -> &'static ResourceSchema {
    ResourceSchema::for_type(ResourceType::Group)
}

/// Parses, checks that the canonical form parses back to the same filter, and returns it.
fn canonical_in(input: &str, schema: &ResourceSchema) -> String {
    let filter = parse_filter(input, schema).unwrap_or_else(|e| panic!("{input}: {}", e.detail));
    let canonical = filter.to_canonical();
    let reparsed = parse_filter(&canonical, schema).unwrap_or_else(|e| panic!("{canonical}: {}", e.detail));
    assert_eq!(reparsed, filter, "{input} -> {canonical}");
    assert_eq!(reparsed.to_canonical(), canonical);
    canonical
}

fn canonical(input: &str) -> String {
    canonical_in(input, user())
}

fn error(input: &str) -> ScimError {
    let error = parse_filter(input, user()).expect_err(input);
    assert_eq!((error.status, error.scim_type), (400, Some(ScimType::InvalidFilter)), "{input}");
    error
}

fn path_error(input: &str) -> ScimError {
    let error = parse_patch_path(input, user()).expect_err(input);
    assert_eq!(error.status, 400);
    error
}

fn manager_value() -> String {
    format!("{ENTERPRISE_USER_URN}:manager.value")
}

#[test]
fn entra_filters_are_accepted() {
    for input in [
        r#"userName eq "Test_User_00aa00aa@testuser.com""#,
        r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
        r#"id eq "123""#,
    ] {
        assert_eq!(canonical(input), input);
    }
    assert_eq!(canonical_in(r#"displayName eq "Group 1""#, group()), r#"displayName eq "Group 1""#);
    assert_eq!(canonical_in(r#"externalId eq "g-1""#, group()), r#"externalId eq "g-1""#);
    assert_eq!(canonical_in(r#"id eq "9" and members eq "42""#, group()), r#"id eq "9" and members.value eq "42""#);
    assert_eq!(
        canonical(r#"id eq "123" and manager eq "456""#),
        format!(r#"id eq "123" and {} eq "456""#, manager_value())
    );
    assert_eq!(
        canonical(&format!(r#"{ENTERPRISE_USER_URN}:manager eq "x""#)),
        format!(r#"{} eq "x""#, manager_value())
    );
    assert_eq!(canonical(r#"manager.value eq "x""#), format!(r#"{} eq "x""#, manager_value()));
    // Runs of spaces between tokens.
    assert_eq!(canonical(r#"  userName   eq  "a b"  "#), r#"userName eq "a b""#);
}

#[test]
fn rfc7644_figure_2_examples() {
    let same = [
        r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
        r#"userName eq "bjensen""#,
        r#"name.familyName co "O'Malley""#,
        r#"userName sw "J""#,
        r#"title pr"#,
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
        r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
        r#"title pr and userType eq "Employee""#,
        r#"title pr or userType eq "Intern""#,
        r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        r#"emails[type eq "work" and value co "@example.com"]"#,
        r#"not (userName eq "x")"#,
    ];
    for input in same {
        assert_eq!(canonical(input), input);
    }
    for (input, expected) in [
        (r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#, r#"userName sw "J""#),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley""#,
            r#"name.familyName co "O'Malley""#,
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and (emails.value co "example.com" or emails.value co "example.org")"#,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails.value co "example.com" or emails.value co "example.org")"#,
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            r#"userType eq "Employee" and emails.type eq "work""#,
        ),
    ] {
        assert_eq!(canonical(input), expected, "{input}");
    }
}

#[test]
fn value_paths_resolve_sub_attributes() {
    let filter = parse_filter(r#"emails[type eq "work"]"#, user()).unwrap();
    let emails = user().resolve("emails").unwrap();
    let work = Filter::Compare(user().resolve("emails.type").unwrap(), CompareOp::Eq, CompValue::Str("work".into()));
    assert_eq!(filter, Filter::ValuePath(emails, Box::new(work)));
    assert_eq!(canonical(r#"EMAILS[TYPE EQ "work"]"#), r#"emails[type eq "work"]"#);
    assert_eq!(canonical(r#"addresses[postalCode pr]"#), r#"addresses[postalCode pr]"#);
    assert_eq!(canonical(r#"name[givenName eq "Ada"]"#), r#"name[givenName eq "Ada"]"#);
    assert_eq!(
        canonical(r#"manager[displayName sw "A"]"#),
        format!(r#"{ENTERPRISE_USER_URN}:manager[displayName sw "A"]"#)
    );
    assert_eq!(
        canonical_in(r#"members[value eq "1" or display co "x"]"#, group()),
        r#"members[value eq "1" or display co "x"]"#
    );
}

#[test]
fn and_binds_tighter_than_or() {
    let filter = parse_filter(r#"title pr or userType eq "x" and active eq true"#, user()).unwrap();
    assert!(
        matches!(&filter, Filter::Or(left, right) if matches!(**left, Filter::Present(_)) && matches!(**right, Filter::And(..)))
    );
    let filter = parse_filter(r#"title pr and userType eq "x" or active eq true"#, user()).unwrap();
    assert!(matches!(&filter, Filter::Or(left, _) if matches!(**left, Filter::And(..))));
    let filter = parse_filter(r#"title pr AND nickName pr And locale pr"#, user()).unwrap();
    assert!(
        matches!(&filter, Filter::And(left, right) if matches!(**left, Filter::And(..)) && matches!(**right, Filter::Present(_)))
    );
    let filter = parse_filter(r#"NOT (title pr) and locale pr"#, user()).unwrap();
    assert!(matches!(&filter, Filter::And(left, _) if matches!(**left, Filter::Not(_))));
}

#[test]
fn canonical_form_keeps_only_needed_parentheses() {
    for (input, expected) in [
        ("((title pr))", "title pr"),
        ("(title pr or locale pr) and nickName pr", "(title pr or locale pr) and nickName pr"),
        ("title pr or (locale pr and nickName pr)", "title pr or locale pr and nickName pr"),
        ("(title pr and locale pr) and nickName pr", "title pr and locale pr and nickName pr"),
        ("title pr and (locale pr and nickName pr)", "title pr and (locale pr and nickName pr)"),
        ("title pr or (locale pr or nickName pr)", "title pr or (locale pr or nickName pr)"),
        ("not(not((title pr)))", "not (not (title pr))"),
        ("not (title pr or locale pr) or nickName pr", "not (title pr or locale pr) or nickName pr"),
        (
            "emails[(type eq \"a\" or type eq \"b\") and primary eq TRUE]",
            "emails[(type eq \"a\" or type eq \"b\") and primary eq true]",
        ),
        ("USERNAME Eq \"x\" oR Title PR", "userName eq \"x\" or title pr"),
        ("active EQ False", "active eq false"),
        ("title eq NULL", "title eq null"),
        ("meta.version eq 1.50E+3", "meta.version eq 1.50E+3"),
    ] {
        assert_eq!(canonical(input), expected, "{input}");
    }
}

#[test]
fn strings_are_unescaped_and_written_back_as_json() {
    let filter = parse_filter(r#"userName eq "a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00é""#, user()).unwrap();
    let Filter::Compare(_, _, CompValue::Str(value)) = &filter else { panic!("{filter:?}") };
    assert_eq!(value, "a\"b\\c/d\u{8}\u{c}\n\r\té😀é");
    assert_eq!(filter.to_canonical(), format!("userName eq {}", serde_json::to_string(value).unwrap()));
    for s in ["", "plain", "quote\"back\\slash", "\u{1}\u{1f}\u{7f}", "line\nfeed", "ünï😀", "</script>"] {
        let mut ours = String::new();
        write_json_string(&mut ours, s);
        assert_eq!(ours, serde_json::to_string(s).unwrap());
        let input = format!("userName eq {ours}");
        assert_eq!(canonical(&input), input);
    }
}

#[test]
fn numbers_follow_the_json_grammar() {
    for n in ["0", "-0", "1", "-12", "0.5", "1e10", "1E+2", "-0.0e-5", "123.456"] {
        assert_eq!(canonical(&format!("meta.version eq {n}")), format!("meta.version eq {n}"));
    }
    for n in ["01", "1.", "1e", "1e+", "--1", "1x", "-", "0x10", "1.2.3", "-.5"] {
        let detail = error(&format!("meta.version eq {n}")).detail;
        assert!(detail.contains("invalid number"), "{n}: {detail}");
    }
    for n in ["+1", ".5", "1,0"] {
        error(&format!("meta.version eq {n}"));
    }
}

#[test]
fn unknown_attributes_are_named_and_values_never_shown() {
    for (input, named) in [
        (r#"nope eq "s3cret""#, "'nope'"),
        (r#"name.nope eq "s3cret""#, "'name.nope'"),
        (r#"userName eq "x" or employeeNumbr eq "s3cret""#, "'employeeNumbr'"),
        (r#"emails[nope eq "s3cret"]"#, "no sub-attribute 'nope'"),
        (r#"schemaz eq "s3cret""#, "'schemaz'"),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "s3cret""#,
            "'urn:ietf:params:scim:schemas:core:2.0:Group:displayName'",
        ),
    ] {
        let detail = error(input).detail;
        assert!(detail.contains(named), "{input}: {detail}");
        assert!(!detail.contains("s3cret"), "{input}: {detail}");
    }
    for input in [
        "userName eq s3cret",
        "userName s3cret \"x\"",
        "userName eq \"x\" s3cret",
        "userName eq 's3cret'",
        "title pr \"s3cret\"",
        "active gt \"s3cret\"",
    ] {
        let detail = error(input).detail;
        assert!(!detail.contains("s3cret"), "{input}: {detail}");
    }
    let long = format!("{} pr", "a".repeat(1000));
    assert!(error(&long).detail.len() < 200);
    assert_eq!(parse_filter("members pr", group()).unwrap().to_canonical(), "members pr");
    assert!(parse_filter("userName pr", group()).is_err());
}

#[test]
fn operators_are_checked_against_attribute_types() {
    for input in [
        "title pr \"x\"",
        "title pr true",
        "active gt true",
        "active co \"t\"",
        "x509Certificates.value gt \"AB\"",
        "name eq \"x\"",
        "name pr and name ne null",
        "meta gt \"x\"",
        "emails.primary sw \"t\"",
        "userName co true",
        "userName co 1",
        "userName gt null",
        "meta.created lt false",
    ] {
        error(input);
    }
    for input in [
        "meta.created co \"2011\"",
        "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
        "x509Certificates.value co \"AB\"",
        "profileUrl sw \"https://\"",
        "active eq true",
        "active ne null",
        "userName gt \"m\"",
        "meta.version gt 3",
        "name pr",
        "emails pr",
        "emails.value ew \".org\"",
    ] {
        canonical(input);
    }
    assert!(error("active le true").detail.contains("Boolean"));
}

#[test]
fn syntax_errors_are_invalid_filter() {
    for input in [
        "",
        "   ",
        "userName",
        "userName eq",
        "userName eq \"x\" userName eq \"y\"",
        "userName eq \"x\" and",
        "or title pr",
        "(title pr",
        "title pr)",
        "()",
        "not title pr",
        "not",
        "not [title pr]",
        "emails[type eq \"work\"",
        "emails[type eq \"work\")",
        "emails[]",
        "emails[type eq \"x\"].value eq \"y\"",
        "userName[value eq \"x\"]",
        "name.givenName[value eq \"x\"]",
        "emails[type[value eq \"x\"]]",
        "emails[type eq \"x\" and phoneNumbers[type eq \"y\"]]",
        "title pr and and locale pr",
        "userName = \"x\"",
        "userName eq \"x\" ∧ title pr",
    ] {
        error(input);
    }
    assert!(error("emails[type[value eq \"x\"]]").detail.contains("nest"));
    assert!(error("not title pr").detail.contains("'not'"));
}

#[test]
fn hostile_input_gets_errors_not_panics() {
    // Length is checked before anything else.
    let detail = error(&"(".repeat(100_000)).detail;
    assert!(detail.contains("4096"), "{detail}");
    assert!(error(&"x".repeat(64 * 1024)).detail.contains("MAX_FILTER_LEN"));
    let at_limit = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 14));
    assert_eq!(at_limit.len(), MAX_FILTER_LEN);
    canonical(&at_limit);
    error(&format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 13)));

    // Nesting.
    let nested = |n: usize| format!("{}title pr{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(canonical(&nested(MAX_FILTER_DEPTH)), "title pr");
    assert!(error(&nested(MAX_FILTER_DEPTH + 1)).detail.contains("MAX_FILTER_DEPTH"));
    assert!(error(&"(".repeat(4000)).detail.contains("MAX_FILTER_DEPTH"));
    let nots = |n: usize| format!("{}title pr{}", "not (".repeat(n), ")".repeat(n));
    canonical(&nots(MAX_FILTER_DEPTH));
    error(&nots(MAX_FILTER_DEPTH + 1));
    let in_value_path = |n: usize| format!("{}emails[type pr]{}", "(".repeat(n), ")".repeat(n));
    canonical(&in_value_path(MAX_FILTER_DEPTH - 1));
    error(&in_value_path(MAX_FILTER_DEPTH));

    // A long chain within the length limit is parsed in a loop and written back.
    let chain = vec!["title pr"; 300].join(" and ");
    assert_eq!(canonical(&chain), chain);
    let mixed = vec!["(title pr or locale pr)"; 140].join(" and ");
    assert_eq!(canonical(&mixed), mixed);

    // Strings.
    for input in [
        r#"userName eq "unterminated"#,
        r#"userName eq "\"#,
        r#"userName eq "\x""#,
        r#"userName eq "\u12""#,
        r#"userName eq "\u12G4""#,
        r#"userName eq "\ud800""#,
        r#"userName eq "\ud800\u0041""#,
        r#"userName eq "\ud800\n""#,
        r#"userName eq "\udc00""#,
        r#"userName eq "\uDFFF\uD800""#,
        "userName eq \"tab\there\"",
        "userName eq \"nul\u{0}\"",
    ] {
        let detail = error(input).detail;
        assert!(detail.contains("string"), "{input}: {detail}");
    }
}

/// A deterministic generator for property tests.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % n
    }

    fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.below(items.len())]
    }

    fn keyword(&mut self, word: &str) -> String {
        let spaces = " ".repeat(1 + self.below(2));
        let word = if self.below(3) == 0 { word.to_uppercase() } else { word.to_string() };
        format!("{spaces}{word}{spaces}")
    }
}

fn random_filter(rng: &mut Rng, depth: usize) -> String {
    const ATOMS: &[&str] = &[
        r#"userName eq "bjensen""#,
        "title pr",
        r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
        "active eq TRUE",
        r#"emails co "example.com""#,
        r#"emails[type eq "work" and value co "@x"]"#,
        r#"emails[not (primary eq false) or (type sw "w")]"#,
        r#"manager eq "m""#,
        "name.familyName ne null",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber le 42",
        r#"x509Certificates.value co "AB""#,
        r#"displayName ew "\u00e9\"""#,
        "meta.version ge -1.5e3",
    ];
    match if depth == 0 { 0 } else { rng.below(5) } {
        0 => rng.pick(ATOMS).to_string(),
        1 => format!("{}{}{}", random_filter(rng, depth - 1), rng.keyword("and"), random_filter(rng, depth - 1)),
        2 => format!("{}{}{}", random_filter(rng, depth - 1), rng.keyword("or"), random_filter(rng, depth - 1)),
        3 => format!("({})", random_filter(rng, depth - 1)),
        _ => format!("{}({})", rng.keyword("not").trim_end(), random_filter(rng, depth - 1)),
    }
}

#[test]
fn canonical_form_round_trips() {
    let mut rng = Rng(7);
    for _ in 0..500 {
        let input = random_filter(&mut rng, 5);
        let once = canonical(&input);
        assert_eq!(canonical(&once), once);
    }
}

#[test]
fn random_token_soup_never_panics() {
    const PIECES: &[&str] = &[
        "(", ")", "[", "]", "not", "and", "or", "pr", "eq", "gt", "\"", "\\", "\\u", "d800", "dc00", "emails",
        "userName", "type", "value", " ", ".", "1", "-", "e", "true", ":", "urn:", "é", "\t", "manager", "name",
    ];
    let mut rng = Rng(42);
    for _ in 0..5000 {
        let input: String = (0..rng.below(30)).map(|_| rng.pick(PIECES)).collect();
        if let Ok(filter) = parse_filter(&input, user()) {
            assert_eq!(parse_filter(&filter.to_canonical(), user()).as_ref(), Ok(&filter), "{input}");
        }
        if let Ok(path) = parse_patch_path(&input, user()) {
            assert_eq!(parse_patch_path(&path.to_canonical(), user()).as_ref(), Ok(&path), "{input}");
        }
    }
}

#[test]
fn unqualified_names_fall_back_to_extensions() {
    let found = resolve_attr(user(), "employeeNumber").unwrap();
    assert_eq!(found.canonical(), format!("{ENTERPRISE_USER_URN}:employeeNumber"));
    assert_eq!(
        resolve_attr(user(), "MANAGER.displayName").unwrap().canonical(),
        format!("{ENTERPRISE_USER_URN}:manager.displayName")
    );
    // Core first: `displayName` is the User's, not the manager's.
    assert_eq!(resolve_attr(user(), "displayName").unwrap().canonical(), "displayName");
    assert_eq!(resolve_attr(user(), "urn:ietf:params:scim:schemas:core:2.0:User:employeeNumber"), None);
    assert_eq!(resolve_attr(user(), "manager.nope"), None);
    assert_eq!(resolve_attr(group(), "employeeNumber"), None);
}

#[test]
fn patch_paths() {
    let urn = ENTERPRISE_USER_URN;
    for (input, expected, target) in [
        ("name.givenName", "name.givenName".to_string(), "givenName"),
        ("emails", "emails".to_string(), "emails"),
        (r#"emails[type eq "work"].value"#, r#"emails[type eq "work"].value"#.to_string(), "value"),
        (r#"EMAILS[Type EQ "work"].VALUE"#, r#"emails[type eq "work"].value"#.to_string(), "value"),
        (
            r#"addresses[type eq "work"].streetAddress"#,
            r#"addresses[type eq "work"].streetAddress"#.to_string(),
            "streetAddress",
        ),
        (
            r#"emails[type eq "work" and primary eq true]"#,
            r#"emails[type eq "work" and primary eq true]"#.to_string(),
            "emails",
        ),
        (&format!("{urn}:employeeNumber"), format!("{urn}:employeeNumber"), "employeeNumber"),
        ("employeeNumber", format!("{urn}:employeeNumber"), "employeeNumber"),
        ("manager", format!("{urn}:manager"), "manager"),
        ("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "name.familyName".to_string(), "familyName"),
    ] {
        let path = parse_patch_path(input, user()).unwrap_or_else(|e| panic!("{input}: {}", e.detail));
        assert_eq!(path.to_canonical(), expected, "{input}");
        assert_eq!(path.target().name, target, "{input}");
        assert_eq!(parse_patch_path(&expected, user()).unwrap(), path);
    }
    for (input, expected, target) in [
        ("members", "members", "members"),
        (r#"members[value eq "2819c223"]"#, r#"members[value eq "2819c223"]"#, "members"),
        (r#"members[value eq "2819c223"].display"#, r#"members[value eq "2819c223"].display"#, "display"),
        ("displayName", "displayName", "displayName"),
    ] {
        let path = parse_patch_path(input, group()).unwrap();
        assert_eq!(path.to_canonical(), expected);
        assert_eq!(path.target().name, target);
    }
    let path = parse_patch_path(r#"members[value eq "1"]"#, group()).unwrap();
    let members = group().resolve("members").unwrap();
    let PatchPath::Value { attr, sub_attribute: None, .. } = path else { panic!("{path:?}") };
    assert_eq!(attr, members);
}

#[test]
fn patch_path_errors() {
    for (input, scim_type, named) in [
        ("", ScimType::InvalidPath, ""),
        ("nope", ScimType::InvalidPath, "'nope'"),
        ("name.nope", ScimType::InvalidPath, "'name.nope'"),
        (r#"emails[type eq "work"].nope"#, ScimType::InvalidPath, "'nope'"),
        (r#"emails[type eq "work"].value.x"#, ScimType::InvalidPath, "'value.x'"),
        (r#"emails[type eq "work"]x"#, ScimType::InvalidPath, ""),
        (r#"emails[type eq "work"].value extra"#, ScimType::InvalidPath, ""),
        (r#"userName[value eq "x"]"#, ScimType::InvalidPath, "'userName'"),
        ("emails extra", ScimType::InvalidPath, "'['"),
        ("\"emails\"", ScimType::InvalidPath, ""),
        ("emails.", ScimType::InvalidPath, ""),
        (r#"emails[type eq]"#, ScimType::InvalidFilter, ""),
        (r#"emails[nope eq "x"]"#, ScimType::InvalidFilter, "'nope'"),
        (r#"emails[type eq "work""#, ScimType::InvalidFilter, "']'"),
        (r#"emails[type eq "wo"#, ScimType::InvalidFilter, "string"),
        (r#"emails[type[value eq "x"]]"#, ScimType::InvalidFilter, "nest"),
    ] {
        let error = path_error(input);
        assert_eq!(error.scim_type, Some(scim_type), "{input}: {}", error.detail);
        assert!(error.detail.contains(named), "{input}: {}", error.detail);
    }
    assert!(path_error(&"a".repeat(MAX_FILTER_LEN + 1)).detail.contains("MAX_FILTER_LEN"));
    assert!(parse_patch_path("members", user()).is_err());
}
