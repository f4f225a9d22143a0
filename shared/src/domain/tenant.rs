use crate::clock::ts;
use crate::ids::{ApiKeyId, Email, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Starter,
    Growth,
    Enterprise,
}

impl Plan {
    /// Most licenses a tenant on this plan may hold; `None` is unlimited.
    pub fn license_limit(self) -> Option<u64> {
        match self {
            Plan::Free => Some(100),
            Plan::Starter => Some(1_000),
            Plan::Growth => Some(10_000),
            Plan::Enterprise => None,
        }
    }
    /// Integration requests per minute per license, across every instance.
    pub fn license_rate_limit_per_minute(self) -> u32 {
        match self {
            Plan::Free => 120,
            Plan::Starter => 240,
            Plan::Growth => 600,
            Plan::Enterprise => 1_200,
        }
    }

    /// Requests per minute per API key, across every instance.
    pub fn rate_limit_per_minute(self) -> u32 {
        match self {
            Plan::Free => 600,
            Plan::Starter => 1_200,
            Plan::Growth => 6_000,
            Plan::Enterprise => 30_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Provisioning,
    Active,
    Failed,
    Suspended,
    Closed,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Provisioning => "provisioning",
            TenantStatus::Active => "active",
            TenantStatus::Failed => "failed",
            TenantStatus::Suspended => "suspended",
            TenantStatus::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Requests per minute per API key (global).
    pub rate_limit_per_minute: u32,
    /// Integration requests per minute per license (global), whichever key
    /// or client makes them.
    #[serde(default = "default_license_rate")]
    pub license_rate_limit_per_minute: u32,
    pub default_grace_days: u32,
    pub trial_days: u32,
    /// Credential-less (public) trial requests per minute per source address.
    #[serde(default = "default_public_trial_rate")]
    pub public_trial_rate_limit_per_minute: u32,
    /// Public (credential-less) trials the tenant takes per UTC day, all
    /// products and addresses together. Trials do not spend the plan's
    /// license limit; this bounds what anonymous callers can start.
    #[serde(default = "default_public_trials_per_day")]
    pub public_trials_per_day: u32,
}

/// Tenants provisioned before the daily cap existed get the default.
fn default_public_trials_per_day() -> u32 {
    super::trial::DEFAULT_PUBLIC_TRIALS_PER_DAY
}

/// Tenants provisioned before public trials existed get the default.
fn default_public_trial_rate() -> u32 {
    PUBLIC_TRIAL_RATE_LIMIT_PER_MINUTE
}

/// Public trials per minute per source address, for every plan.
pub const PUBLIC_TRIAL_RATE_LIMIT_PER_MINUTE: u32 = 10;

/// Tenants provisioned before the per-license limit existed.
fn default_license_rate() -> u32 {
    Plan::Free.license_rate_limit_per_minute()
}

impl TenantSettings {
    pub fn for_plan(plan: Plan) -> Self {
        Self {
            rate_limit_per_minute: plan.rate_limit_per_minute(),
            license_rate_limit_per_minute: plan.license_rate_limit_per_minute(),
            default_grace_days: 7,
            trial_days: 14,
            public_trial_rate_limit_per_minute: PUBLIC_TRIAL_RATE_LIMIT_PER_MINUTE,
            public_trials_per_day: super::trial::DEFAULT_PUBLIC_TRIALS_PER_DAY,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tenant {
    pub tenant_id: TenantId,
    pub name: String,
    pub admin_email: Email,
    pub plan: Plan,
    pub status: TenantStatus,
    pub settings: TenantSettings,
    /// Most licenses this tenant may hold (from its plan); absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_limit: Option<u64>,
    /// Conditional counter behind the plan limit.
    #[serde(default)]
    pub licenses_issued: u64,
    /// The first admin key, active once the tenant is.
    pub admin_key_id: ApiKeyId,
    /// Digest of the creating request: same request again is idempotent,
    /// a different body for the same id is a conflict.
    pub request_hash: String,
    /// Provisioning stages by name (see `usecases::tenants::STAGES` for their order).
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, StageState>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_endpoints: Vec<String>,
    /// The version of the tenant's Ed25519 key that signs (`docs/signing.md`).
    #[serde(default = "first_key_version")]
    pub signing_key_version: u32,
    /// When each version after the first was made (by rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKeyVersion>,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageState {
    /// `pending`, `done`, `skipped` or `failed`.
    pub state: String,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "ts")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Integration,
    Admin,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// hex(HMAC-SHA256(pepper, secret)); the secret itself is never stored.
    pub hash: String,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When provisioning activated this key (the tenant's first admin key).
    #[serde(default, with = "ts::option", skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<OffsetDateTime>,
}

impl ApiKeyRecord {
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// Changes to a tenant's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_rate_limit_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_grace_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_trials_per_day: Option<u32>,
}

impl SettingsPatch {
    /// Limits 1 to 1,000,000 (a minute; public trials a day); days within
    /// the policy bounds.
    pub fn check(&self) -> Result<(), crate::error::Error> {
        use crate::error::Error;
        for (field, v) in [
            ("rate_limit_per_minute", self.rate_limit_per_minute),
            (
                "license_rate_limit_per_minute",
                self.license_rate_limit_per_minute,
            ),
            ("public_trials_per_day", self.public_trials_per_day),
        ] {
            if v.is_some_and(|v| !(1..=1_000_000).contains(&v)) {
                return Err(Error::validation(format!(
                    "settings.{field} must be 1 to 1000000"
                )));
            }
        }
        if let Some(d) = self.default_grace_days {
            super::check_grace_period_days(d)?;
        }
        if self.trial_days.is_some_and(|d| !(1..=365).contains(&d)) {
            return Err(Error::validation("settings.trial_days must be 1 to 365"));
        }
        Ok(())
    }
}

/// The records provisioning seeds for a new tenant, one per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedRecord {
    Catalogue,
    UsageTotals,
    Branding,
    Webhooks,
}

impl SeedRecord {
    pub const ALL: [SeedRecord; 4] = [
        SeedRecord::Catalogue,
        SeedRecord::UsageTotals,
        SeedRecord::Branding,
        SeedRecord::Webhooks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SeedRecord::Catalogue => "CATALOGUE",
            SeedRecord::UsageTotals => "USAGE_TOTALS",
            SeedRecord::Branding => "BRANDING",
            SeedRecord::Webhooks => "WEBHOOKS",
        }
    }

    /// The provisioning stage that writes it.
    pub fn stage(self) -> &'static str {
        match self {
            SeedRecord::Catalogue => "entitlements_catalogue",
            SeedRecord::UsageTotals => "usage_counters",
            SeedRecord::Branding => "branding",
            SeedRecord::Webhooks => "webhook_endpoints",
        }
    }
}

fn first_key_version() -> u32 {
    1
}

/// A version of a tenant's signing key made by rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyVersion {
    pub version: u32,
    #[serde(with = "ts")]
    pub created_at: OffsetDateTime,
}

impl Tenant {
    /// Every version of the tenant's signing key, oldest first, with when
    /// it was made and whether it is the one that signs now.
    pub fn signing_key_versions(&self) -> Vec<(u32, OffsetDateTime, bool)> {
        (1..=self.signing_key_version)
            .map(|v| {
                let made = self.signing_keys.iter().find(|k| k.version == v);
                let at = made.map(|k| k.created_at).unwrap_or(self.created_at);
                (v, at, v == self.signing_key_version)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_trial_cap_is_a_checked_setting_with_a_default() {
        let ok: SettingsPatch = serde_json::from_str(r#"{"public_trials_per_day": 5}"#).unwrap();
        assert!(ok.check().is_ok());
        for bad in [0, 1_000_001] {
            let p = SettingsPatch {
                public_trials_per_day: Some(bad),
                ..Default::default()
            };
            let msg = p.check().unwrap_err().to_string();
            assert!(msg.contains("settings.public_trials_per_day"), "{msg}");
        }
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"public_trials_per_day": -1}"#).is_err());
        assert_eq!(
            TenantSettings::for_plan(Plan::Enterprise).public_trials_per_day,
            100
        );
        // A tenant stored before the setting existed reads the default.
        let old: TenantSettings = serde_json::from_value(serde_json::json!({
            "rate_limit_per_minute": 600, "default_grace_days": 7, "trial_days": 14
        }))
        .unwrap();
        assert_eq!(old.public_trials_per_day, 100);
    }
}
