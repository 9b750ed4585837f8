//! Systeme.io tags: every tag this system writes starts with its owning tenant's prefix.
//!
//! See docs/contract.md: `{prefix}{form}`, `{prefix}{ib_type}` (slugged), a volume tag, and
//! client-supplied tags re-prefixed; a tag that carries another tenant's prefix is never written.

use serde::{Deserialize, Serialize};

use crate::tenant::TagPrefix;

/// Longest slug kept after a prefix (Systeme.io tag names are short labels).
pub const MAX_SLUG_LEN: usize = 64;

/// A tag owned by one tenant. Invariant: `{prefix}{slug}` where the prefix is a valid
/// [`TagPrefix`] and the slug is 1..=[`MAX_SLUG_LEN`] characters of `[a-z0-9-]`, with no
/// leading, trailing or doubled `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    /// `prefix` + the slug of `raw`; `None` when nothing of `raw` survives slugging.
    pub fn new(prefix: &TagPrefix, raw: &str) -> Option<Self> {
        slug(raw).map(|s| Self(format!("{prefix}{s}")))
    }

    /// Parses a stored or received full tag name.
    pub fn parse(full: &str) -> Option<Self> {
        let prefix = TagPrefix::of_tag(full)?;
        let rest = full.get(TagPrefix::LEN..)?;
        (slug(rest).as_deref() == Some(rest)).then(|| Self(format!("{prefix}{rest}")))
    }

    /// The owner's prefix.
    pub fn prefix(&self) -> Option<TagPrefix> {
        TagPrefix::of_tag(&self.0)
    }

    /// The part after the prefix (what suffix rules match on).
    pub fn suffix(&self) -> &str {
        self.0.get(TagPrefix::LEN..).unwrap_or_default()
    }

    /// Whether `prefix` owns this tag.
    pub fn is_owned_by(&self, prefix: &TagPrefix) -> bool {
        self.0.starts_with(prefix.as_ref())
    }
}

/// A string that is not a prefixed tag (`ib-xxxxxxxx-` and a slug).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a prefixed tag")]
pub struct NotATag(pub String);

impl TryFrom<String> for Tag {
    type Error = NotATag;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or(NotATag(value))
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> Self {
        tag.0
    }
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lowercase `[a-z0-9]` runs joined by single `-`, at most [`MAX_SLUG_LEN`] characters;
/// `None` when nothing is left. `"Forex IB!"` → `forex-ib`.
pub fn slug(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len().min(MAX_SLUG_LEN));
    let mut pending_dash = false;
    for c in raw.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
        if out.len() >= MAX_SLUG_LEN {
            break;
        }
    }
    out.truncate(MAX_SLUG_LEN);
    let trimmed = out.trim_end_matches('-');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// How a client-supplied tag is written for `owner`:
/// - a tag already carrying `owner`'s prefix keeps it (no double prefix);
/// - a tag that carries any other prefix (another tenant's, or one that merely looks like one)
///   is refused: `None`, never written;
/// - anything else is slugged and prefixed.
pub fn client_tag(owner: &TagPrefix, raw: &str) -> Option<Tag> {
    let slugged = slug(raw)?;
    // A bare prefix (`ib-xxxxxxxx`, its dash slugged away) carries no information.
    if slugged.len() == TagPrefix::LEN - 1 && TagPrefix::of_tag(&format!("{slugged}-")).is_some() {
        return None;
    }
    match TagPrefix::of_tag(&slugged) {
        // Strip the owner's own prefix and judge what follows on its own.
        Some(p) if &p == owner => client_tag(owner, slugged.get(TagPrefix::LEN..)?),
        Some(_) => None,
        None => Tag::new(owner, &slugged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefix(s: &str) -> TagPrefix {
        TagPrefix::parse(s).unwrap()
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(slug("Forex IB!").as_deref(), Some("forex-ib"));
        assert_eq!(
            slug("  --crypto__affiliate-- ").as_deref(),
            Some("crypto-affiliate")
        );
        assert_eq!(slug("CFD Partner").as_deref(), Some("cfd-partner"));
        assert_eq!(slug("!!!"), None);
        assert_eq!(slug(""), None);
    }

    #[test]
    fn slugs_are_cut_to_the_maximum_length_without_a_trailing_dash() {
        let long = "ab ".repeat(100);
        let s = slug(&long).unwrap();
        assert!(s.len() <= MAX_SLUG_LEN);
        assert!(!s.ends_with('-'));
    }

    #[test]
    fn a_client_tag_is_prefixed_with_the_owner() {
        let own = prefix("ib-a7x3k2m1-");
        assert_eq!(
            client_tag(&own, "Webinar Nov").unwrap().as_ref(),
            "ib-a7x3k2m1-webinar-nov"
        );
    }

    #[test]
    fn a_client_tag_already_carrying_the_owner_prefix_is_not_prefixed_twice() {
        let own = prefix("ib-a7x3k2m1-");
        assert_eq!(
            client_tag(&own, "ib-a7x3k2m1-vip").unwrap().as_ref(),
            "ib-a7x3k2m1-vip"
        );
    }

    #[test]
    fn a_client_tag_carrying_another_tenants_prefix_is_never_written() {
        let own = prefix("ib-a7x3k2m1-");
        assert_eq!(client_tag(&own, "ib-b9z5n4p8-converted"), None);
        assert_eq!(client_tag(&own, "IB-B9Z5N4P8-converted"), None);
        assert_eq!(client_tag(&own, "ib-b9z5n4p8"), None);
        assert_eq!(client_tag(&own, "ib b9z5n4p8 converted"), None);
    }

    #[test]
    fn full_tags_parse_back_and_know_their_owner() {
        let tag = Tag::parse("ib-a7x3k2m1-email-opened").unwrap();
        assert_eq!(tag.suffix(), "email-opened");
        assert_eq!(tag.prefix(), Some(prefix("ib-a7x3k2m1-")));
        assert!(tag.is_owned_by(&prefix("ib-a7x3k2m1-")));
        assert!(!tag.is_owned_by(&prefix("ib-b9z5n4p8-")));
        assert_eq!(Tag::parse("demo-request"), None);
        assert_eq!(Tag::parse("ib-a7x3k2m1-"), None);
        assert_eq!(Tag::parse("ib-a7x3k2m1-Bad Tag"), None);
    }

    proptest! {
        #[test]
        fn every_client_tag_written_starts_with_the_owner_prefix(raw in ".{0,80}") {
            let own = prefix("ib-a7x3k2m1-");
            if let Some(tag) = client_tag(&own, &raw) {
                prop_assert!(tag.is_owned_by(&own));
                prop_assert_eq!(Tag::parse(tag.as_ref()), Some(tag.clone()));
                // What follows the owner's prefix never looks like another prefix.
                prop_assert!(TagPrefix::of_tag(tag.suffix()).is_none());
            }
        }
    }
}
