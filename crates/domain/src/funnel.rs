//! Lead stages and the tag-suffix rules that move leads through them and count email activity.
//!
//! Stages only move forward: `new → nurturing → engaged → converted → retained`. A Systeme.io
//! automation reports email activity by adding a tenant-prefixed tag (`…-email-opened`), so a
//! tag's suffix decides its [`Effect`]. Tenants may override the default rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tenant::FieldError;

/// Where a lead is in the funnel. Invariant: ordered; a lead never moves backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    New,
    Nurturing,
    Engaged,
    Converted,
    Retained,
}

impl Stage {
    pub const ALL: [Self; 5] = [
        Self::New,
        Self::Nurturing,
        Self::Engaged,
        Self::Converted,
        Self::Retained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Nurturing => "nurturing",
            Self::Engaged => "engaged",
            Self::Converted => "converted",
            Self::Retained => "retained",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// The later of the two: stages only move forward.
    #[must_use]
    pub fn advance(self, to: Self) -> Self {
        self.max(to)
    }
}

/// What a tag (by suffix) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// An email went out: counts a send; the lead is at least nurturing.
    EmailSent,
    /// An email was opened: counts an open; the lead is at least engaged.
    EmailOpened,
    /// A link was clicked: counts a click; the lead is at least engaged.
    EmailClicked,
    /// The lead converted (counted once per lead).
    Converted,
    /// The lead is retained (a repeat customer, a VIP).
    Retained,
    /// Sets the inactive flag (cleared when the tag is removed).
    Inactive,
    /// Sets the churned flag (cleared when the tag is removed).
    Churned,
    /// Explicitly nothing: lets a tenant switch a default rule off.
    Ignore,
}

/// Rules from tag suffix to effect. Keys are an exact suffix (`email-opened`) or a prefix
/// pattern ending in `*` (`email-*`). Invariant: keys are non-empty `[a-z0-9-]` with at most
/// one trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TagRules(BTreeMap<String, Effect>);

/// Most rules a tenant may define.
pub const MAX_RULES: usize = 100;

impl TagRules {
    /// The built-in rules: `email-sent` and any other `email-*` count sends;
    /// `email-opened` and `engaged` count opens; `email-clicked` counts clicks; `converted`;
    /// `retained` and `vip-member`; `inactive` and `churned` flags.
    pub fn defaults() -> Self {
        let rules = [
            ("email-sent", Effect::EmailSent),
            ("email-*", Effect::EmailSent),
            ("email-opened", Effect::EmailOpened),
            ("engaged", Effect::EmailOpened),
            ("email-clicked", Effect::EmailClicked),
            ("converted", Effect::Converted),
            ("retained", Effect::Retained),
            ("vip-member", Effect::Retained),
            ("inactive", Effect::Inactive),
            ("churned", Effect::Churned),
        ];
        Self(rules.iter().map(|(k, e)| ((*k).to_string(), *e)).collect())
    }

    /// Parses a tenant's override (a JSON object of pattern → effect), validated.
    pub fn parse_overrides(json: &serde_json::Value) -> Result<Self, FieldError> {
        let rules: BTreeMap<String, Effect> = serde_json::from_value(json.clone()).map_err(|e| {
            FieldError::new(
                "tag_rules",
                format!("must map tag suffixes to effects (email_sent, email_opened, email_clicked, converted, retained, inactive, churned, ignore): {e}"),
            )
        })?;
        if rules.len() > MAX_RULES {
            return Err(FieldError::new(
                "tag_rules",
                format!("at most {MAX_RULES} rules"),
            ));
        }
        for key in rules.keys() {
            let body = key.strip_suffix('*').unwrap_or(key);
            let ok = !body.is_empty()
                && body.len() <= 64
                && body
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(FieldError::new(
                    "tag_rules",
                    format!("{key:?} is not a tag suffix like `webinar-attended` or `email-*`"),
                ));
            }
        }
        Ok(Self(rules))
    }

    /// The defaults with a tenant's overrides on top (the tenant's entry wins).
    #[must_use]
    pub fn with_overrides(mut self, overrides: &Self) -> Self {
        for (k, e) in &overrides.0 {
            self.0.insert(k.clone(), *e);
        }
        self
    }

    /// The effect of a tag suffix: an exact rule wins, then the longest matching pattern.
    pub fn effect(&self, suffix: &str) -> Option<Effect> {
        if let Some(e) = self.0.get(suffix) {
            return Some(*e).filter(|e| *e != Effect::Ignore);
        }
        self.0
            .iter()
            .filter_map(|(k, e)| {
                let head = k.strip_suffix('*')?;
                suffix.starts_with(head).then_some((head.len(), *e))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, e)| e)
            .filter(|e| *e != Effect::Ignore)
    }
}

/// A lead's funnel state, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeadState {
    pub stage: StageOrNew,
    pub emails_sent: i64,
    pub emails_opened: i64,
    pub emails_clicked: i64,
    pub converted: bool,
    pub sales: i64,
    pub revenue_cents: i64,
    pub inactive: bool,
    pub churned: bool,
}

/// [`Stage`] with `new` as its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageOrNew(pub Stage);

impl Default for StageOrNew {
    fn default() -> Self {
        Self(Stage::New)
    }
}

/// What one event changed, for the lead row and the day's rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delta {
    pub emails_sent: i64,
    pub emails_opened: i64,
    pub emails_clicked: i64,
    /// 1 when the lead converted for the first time.
    pub conversions: i64,
    pub revenue_cents: i64,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl LeadState {
    /// Applies a tag being added.
    pub fn tag_added(&mut self, effect: Effect) -> Delta {
        let mut delta = Delta::default();
        match effect {
            Effect::EmailSent => {
                delta.emails_sent = 1;
                self.advance(Stage::Nurturing);
            }
            Effect::EmailOpened => {
                delta.emails_opened = 1;
                self.advance(Stage::Engaged);
            }
            Effect::EmailClicked => {
                delta.emails_clicked = 1;
                self.advance(Stage::Engaged);
            }
            Effect::Converted => delta.conversions = self.convert(),
            Effect::Retained => {
                delta.conversions = self.convert();
                self.advance(Stage::Retained);
            }
            Effect::Inactive => self.inactive = true,
            Effect::Churned => self.churned = true,
            Effect::Ignore => {}
        }
        self.count(delta);
        delta
    }

    /// Applies a tag being removed: only flags are cleared; stages and counts never go back.
    pub fn tag_removed(&mut self, effect: Effect) {
        match effect {
            Effect::Inactive => self.inactive = false,
            Effect::Churned => self.churned = false,
            _ => {}
        }
    }

    /// An opt-in: the lead confirmed it wants emails, so it is at least nurturing.
    pub fn opted_in(&mut self) {
        self.advance(Stage::Nurturing);
    }

    /// A sale: the first converts, a later one means retained. Revenue in cents.
    pub fn sale(&mut self, amount_cents: i64) -> Delta {
        let repeat = self.sales >= 1;
        let delta = Delta {
            conversions: self.convert(),
            revenue_cents: amount_cents,
            ..Delta::default()
        };
        if repeat {
            self.advance(Stage::Retained);
        }
        self.sales += 1;
        self.count(delta);
        delta
    }

    /// A cancelled sale: its revenue is subtracted; stages stay.
    pub fn sale_canceled(&mut self, amount_cents: i64) -> Delta {
        let delta = Delta {
            revenue_cents: -amount_cents,
            ..Delta::default()
        };
        self.sales = (self.sales - 1).max(0);
        self.count(delta);
        delta
    }

    fn advance(&mut self, to: Stage) {
        self.stage = StageOrNew(self.stage.0.advance(to));
    }

    /// Marks converted; 1 the first time, else 0.
    fn convert(&mut self) -> i64 {
        self.advance(Stage::Converted);
        if self.converted {
            0
        } else {
            self.converted = true;
            1
        }
    }

    fn count(&mut self, delta: Delta) {
        self.emails_sent += delta.emails_sent;
        self.emails_opened += delta.emails_opened;
        self.emails_clicked += delta.emails_clicked;
        self.revenue_cents += delta.revenue_cents;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TagRules {
        TagRules::defaults()
    }

    #[test]
    fn default_suffixes_map_to_their_effects() {
        let r = defaults();
        assert_eq!(r.effect("email-sent"), Some(Effect::EmailSent));
        assert_eq!(r.effect("email-welcome-day-3"), Some(Effect::EmailSent));
        assert_eq!(r.effect("email-opened"), Some(Effect::EmailOpened));
        assert_eq!(r.effect("engaged"), Some(Effect::EmailOpened));
        assert_eq!(r.effect("email-clicked"), Some(Effect::EmailClicked));
        assert_eq!(r.effect("converted"), Some(Effect::Converted));
        assert_eq!(r.effect("vip-member"), Some(Effect::Retained));
        assert_eq!(r.effect("churned"), Some(Effect::Churned));
        assert_eq!(r.effect("demo-request"), None);
    }

    #[test]
    fn a_tenant_override_wins_and_can_switch_a_default_off() {
        let overrides = TagRules::parse_overrides(&serde_json::json!({
            "webinar-*": "email_clicked", "email-sent": "ignore"
        }))
        .unwrap();
        let r = defaults().with_overrides(&overrides);
        assert_eq!(r.effect("webinar-attended"), Some(Effect::EmailClicked));
        assert_eq!(r.effect("email-sent"), None);
        assert_eq!(r.effect("email-opened"), Some(Effect::EmailOpened));
    }

    #[test]
    fn bad_overrides_name_the_field() {
        for bad in [
            serde_json::json!({"Bad Key": "converted"}),
            serde_json::json!({"x": "teleported"}),
            serde_json::json!(["converted"]),
            serde_json::json!({"*": "converted"}),
        ] {
            assert_eq!(
                TagRules::parse_overrides(&bad).unwrap_err().field,
                "tag_rules",
                "{bad}"
            );
        }
    }

    #[test]
    fn stages_only_move_forward() {
        let mut s = LeadState::default();
        s.tag_added(Effect::EmailOpened);
        assert_eq!(s.stage.0, Stage::Engaged);
        s.tag_added(Effect::EmailSent);
        assert_eq!(
            s.stage.0,
            Stage::Engaged,
            "a later send does not move it back"
        );
        s.opted_in();
        assert_eq!(s.stage.0, Stage::Engaged);
    }

    #[test]
    fn email_tags_count_sends_opens_and_clicks() {
        let mut s = LeadState::default();
        let d = s.tag_added(Effect::EmailSent);
        assert_eq!((d.emails_sent, s.stage.0), (1, Stage::Nurturing));
        s.tag_added(Effect::EmailOpened);
        s.tag_added(Effect::EmailClicked);
        assert_eq!(
            (s.emails_sent, s.emails_opened, s.emails_clicked),
            (1, 1, 1)
        );
    }

    #[test]
    fn conversion_counts_once() {
        let mut s = LeadState::default();
        assert_eq!(s.tag_added(Effect::Converted).conversions, 1);
        assert_eq!(s.tag_added(Effect::Converted).conversions, 0);
        assert_eq!(s.stage.0, Stage::Converted);
    }

    #[test]
    fn a_first_sale_converts_and_a_second_means_retained() {
        let mut s = LeadState::default();
        let d = s.sale(19_900);
        assert_eq!(
            (d.conversions, d.revenue_cents, s.stage.0),
            (1, 19_900, Stage::Converted)
        );
        let d = s.sale(5_000);
        assert_eq!(
            (d.conversions, s.stage.0, s.revenue_cents),
            (0, Stage::Retained, 24_900)
        );
    }

    #[test]
    fn a_cancelled_sale_subtracts_revenue_but_keeps_the_stage() {
        let mut s = LeadState::default();
        s.sale(19_900);
        let d = s.sale_canceled(19_900);
        assert_eq!(
            (d.revenue_cents, s.revenue_cents, s.stage.0),
            (-19_900, 0, Stage::Converted)
        );
    }

    #[test]
    fn flags_are_set_by_tags_and_cleared_when_the_tag_goes() {
        let mut s = LeadState::default();
        s.tag_added(Effect::Inactive);
        s.tag_added(Effect::Churned);
        assert!(s.inactive && s.churned);
        s.tag_removed(Effect::Inactive);
        assert!(!s.inactive && s.churned);
        s.tag_removed(Effect::Converted);
        assert!(s.churned);
    }

    #[test]
    fn retained_implies_a_conversion() {
        let mut s = LeadState::default();
        assert_eq!(s.tag_added(Effect::Retained).conversions, 1);
        assert_eq!(s.stage.0, Stage::Retained);
    }
}
