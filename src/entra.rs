//! Entra's own JWT (the Secret Token left blank): Envoy's `jwt_authn` filter in front of
//! scim-edge verifies the signature, issuer, audience and times against Entra's keys and puts the
//! verified payload in the request's dynamic metadata (`payload_in_metadata`); this module decides
//! whether that payload may provision here. Entra's SCIM audience is the same for every tenant,
//! so the tenant (`tid`) and the calling application (`appid`, Entra's provisioning service) are
//! what bind a token to this gateway.

use crate::config::{ConfigError, Fields};
use crate::oauth::is_counter_name;

/// Entra's provisioning service, the `appid` of the tokens it sends to SCIM endpoints.
pub const PROVISIONING_APP_ID: &str = "00000014-0000-0000-c000-000000000000";
/// The `jwt_authn` filter's namespace in dynamic metadata.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
pub const DEFAULT_METADATA_KEY: &str = "entra";

/// A tenant allowed to provision: its name (for logs and counters) and its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub name: String,
    pub tenant_id: String,
}

/// The compiled `entra_jwt` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntraJwt {
    pub tenants: Vec<Tenant>,
    pub app_ids: Vec<String>,
    /// `payload_in_metadata` of the `jwt_authn` provider.
    pub metadata_key: String,
}

impl EntraJwt {
    /// The property path of one claim of the verified payload
    /// (`metadata.filter_metadata["envoy.filters.http.jwt_authn"][<key>][<claim>]`). Envoy hands
    /// a string claim over as its bytes (docs/authentication.md, "What Envoy returns").
    pub fn claim_path<'a>(&'a self, claim: &'a str) -> [&'a str; 5] {
        ["metadata", "filter_metadata", JWT_AUTHN_NAMESPACE, &self.metadata_key, claim]
    }

    /// The tenant a verified payload with these claims belongs to, when it is a configured tenant
    /// and the token was issued to a configured application.
    pub fn admit(&self, tid: Option<&[u8]>, appid: Option<&[u8]>) -> Option<&Tenant> {
        let appid = appid?;
        if !self.app_ids.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(appid)) {
            return None;
        }
        let tid = tid?;
        self.tenants.iter().find(|t| t.tenant_id.as_bytes().eq_ignore_ascii_case(tid))
    }

    /// Compiles the `entra_jwt` section; `None` when absent.
    pub(crate) fn from_config(root: &Fields) -> Result<Option<EntraJwt>, ConfigError> {
        let Some(value) = root.get("entra_jwt") else {
            return Ok(None);
        };
        let fields = Fields::of("entra_jwt", value)?;
        fields.deny_unknown(&["tenants", "app_ids", "metadata_key"])?;
        let items = fields
            .array("tenants")?
            .ok_or_else(|| fields.error("tenants", "required: at least one {name, tenant_id}"))?;
        if items.is_empty() {
            return Err(fields.error("tenants", "empty: no token could ever be admitted"));
        }
        let mut tenants: Vec<Tenant> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let tenant = Fields::of(&format!("entra_jwt.tenants[{index}]"), item)?;
            tenant.deny_unknown(&["name", "tenant_id"])?;
            let name = tenant.required_string("name")?;
            if !is_counter_name(name) {
                return Err(
                    tenant.error("name", "1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names)")
                );
            }
            let tenant_id = tenant.required_string("tenant_id")?;
            if !is_guid(tenant_id) {
                return Err(tenant.error("tenant_id", "expected the directory (tenant) id, a GUID"));
            }
            if tenants.iter().any(|t| t.name == name || t.tenant_id.eq_ignore_ascii_case(tenant_id)) {
                return Err(tenant.error("name", "duplicate tenant"));
            }
            tenants.push(Tenant { name: name.to_string(), tenant_id: tenant_id.to_string() });
        }
        let mut app_ids = Vec::new();
        match fields.array("app_ids")? {
            None => app_ids.push(PROVISIONING_APP_ID.to_string()),
            Some(items) => {
                for (index, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(id) if is_guid(id) => app_ids.push(id.to_string()),
                        _ => {
                            return Err(crate::config::error(format!("entra_jwt.app_ids[{index}]"), "expected a GUID"))
                        }
                    }
                }
                if app_ids.is_empty() {
                    return Err(fields.error("app_ids", "empty: no token could ever be admitted"));
                }
            }
        }
        let metadata_key = fields.string("metadata_key")?.unwrap_or(DEFAULT_METADATA_KEY);
        if !is_counter_name(metadata_key) {
            return Err(fields
                .error("metadata_key", "1 to 64 characters from A-Z a-z 0-9 - _ (it becomes part of metric names)"));
        }
        Ok(Some(EntraJwt { tenants, app_ids, metadata_key: metadata_key.to_string() }))
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hexadecimal.
fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const CONTOSO: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn entra() -> EntraJwt {
        EntraJwt {
            tenants: vec![Tenant { name: "contoso".into(), tenant_id: CONTOSO.into() }],
            app_ids: vec![PROVISIONING_APP_ID.into()],
            metadata_key: "entra".into(),
        }
    }

    #[test]
    fn only_a_configured_tenant_with_the_provisioning_app_is_admitted() {
        let e = entra();
        let app = Some(PROVISIONING_APP_ID.as_bytes());
        assert_eq!(e.admit(Some(CONTOSO.as_bytes()), app).map(|t| t.name.as_str()), Some("contoso"));
        assert_eq!(e.admit(Some(CONTOSO.to_uppercase().as_bytes()), app).map(|t| t.name.as_str()), Some("contoso"));
        assert_eq!(e.admit(Some(b"00000000-0000-0000-0000-000000000000"), app), None, "another tenant");
        assert_eq!(e.admit(Some(CONTOSO.as_bytes()), Some(b"11111111-0000-0000-c000-000000000000")), None);
        assert_eq!(e.admit(None, app), None);
        assert_eq!(e.admit(Some(CONTOSO.as_bytes()), None), None);
    }

    #[test]
    fn the_claim_path_names_jwt_authns_metadata() {
        assert_eq!(
            entra().claim_path("tid"),
            ["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "entra", "tid"]
        );
    }

    #[test]
    fn guids_are_checked() {
        assert!(is_guid(CONTOSO));
        assert!(is_guid(PROVISIONING_APP_ID));
        assert!(!is_guid("72f988bf86f141af91ab2d7cd011db47"));
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4g"));
    }

    #[test]
    fn the_section_compiles_with_the_provisioning_app_by_default_and_errors_name_the_field() {
        let compile = |entra: serde_json::Value| {
            let json = serde_json::json!({
                "version": 1,
                "upstream": {"cluster": "c", "authority": "a", "base_path": "/v2", "bearer_token": "k"},
                "entra_jwt": entra,
            });
            crate::config::Config::from_json(json.to_string().as_bytes(), &crate::config::no_env)
        };
        let config = compile(serde_json::json!({"tenants": [{"name": "contoso", "tenant_id": CONTOSO}]})).unwrap();
        assert_eq!(config.entra_jwt, Some(entra()));
        assert_eq!(config.tokens.names().count(), 0, "no static tokens needed");
        for (entra, field) in [
            (serde_json::json!({"tenants": []}), "entra_jwt.tenants"),
            (serde_json::json!({"tenants": [{"name": "c", "tenant_id": "contoso"}]}), "entra_jwt.tenants[0].tenant_id"),
            (serde_json::json!({"tenants": [{"name": "c d", "tenant_id": CONTOSO}]}), "entra_jwt.tenants[0].name"),
            (
                serde_json::json!({"tenants": [{"name": "c", "tenant_id": CONTOSO}], "app_ids": ["x"]}),
                "entra_jwt.app_ids[0]",
            ),
            (serde_json::json!({"tenants": [{"name": "c", "tenant_id": CONTOSO}], "aud": "x"}), "entra_jwt.aud"),
        ] {
            assert_eq!(compile(entra).unwrap_err().field, field);
        }
    }
}
