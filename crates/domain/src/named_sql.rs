//! Named parameters for a positional API.
//!
//! Spin's SQLite interface binds values by position only (`?1`, `?2`, …). A write with thirty
//! columns bound by hand-counted numbers is easy to get wrong and hard to review, so a long
//! statement names its values instead (`:email`, `:utm_source`) and [`number_named`] rewrites
//! each name to a number before the statement runs: the first name gets the number after the
//! highest `?N` the statement uses, and every use of a name gets the same number. Quoted
//! strings, quoted identifiers and comments are left as they are.

use thiserror::Error;

use crate::schema::skip_quoted_or_comment;

/// Why a statement's parameters cannot be numbered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NamedSqlError {
    /// A bare `?`: its number depends on everything before it, which is what names avoid.
    #[error("a bare `?` parameter at byte {0}: use `?N` or `:name`")]
    BareParameter(usize),
}

/// A statement whose `:name` parameters were rewritten to `?N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered<'a> {
    /// The statement, every `:name` replaced by its `?N`.
    pub sql: String,
    /// The numbered parameters' names: `names[0]` is `?{first}`, and so on.
    pub names: Vec<&'a str>,
    /// The number of the first name (one more than the highest `?N` in the statement).
    pub first: usize,
}

/// Rewrites every `:name` in `sql` to `?N` (see the module docs).
pub fn number_named(sql: &str) -> Result<Numbered<'_>, NamedSqlError> {
    let bytes = sql.as_bytes();
    let mut names: Vec<&str> = Vec::new();
    let mut highest = 0usize;
    // (start, end, name's index) of each `:name`, in order.
    let mut uses: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if let Some((end, _)) = skip_quoted_or_comment(sql, i) {
            i = end;
            continue;
        }
        match b {
            b'?' => {
                let end = word_end(bytes, i + 1, |c| c.is_ascii_digit());
                if end == i + 1 {
                    return Err(NamedSqlError::BareParameter(i));
                }
                highest = highest.max(sql[i + 1..end].parse().unwrap_or(usize::MAX));
                i = end;
            }
            b':' if bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let end = word_end(bytes, i + 1, |c| c.is_ascii_alphanumeric() || c == b'_');
                let name = &sql[i + 1..end];
                let index = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                    names.push(name);
                    names.len() - 1
                });
                uses.push((i, end, index));
                i = end;
            }
            _ => i += 1,
        }
    }
    let first = highest + 1;
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (start, end, index) in uses {
        out.push_str(&sql[copied..start]);
        out.push('?');
        out.push_str(&(first + index).to_string());
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Ok(Numbered {
        sql: out,
        names,
        first,
    })
}

fn word_end(bytes: &[u8], from: usize, part: impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while bytes.get(end).is_some_and(|c| part(*c)) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_the_highest_number_and_repeat_their_own() {
        let n = number_named(
            "INSERT INTO leads (tenant_id, email, name) SELECT ?1, :email, :name \
             WHERE :email != '' AND ?2 > 0",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.sql,
            "INSERT INTO leads (tenant_id, email, name) SELECT ?1, ?3, ?4 WHERE ?3 != '' AND ?2 > 0"
        );
        assert_eq!((n.names, n.first), (vec!["email", "name"], 3));
    }

    #[test]
    fn strings_identifiers_and_comments_are_left_alone() {
        let sql = "SELECT strftime('%H:%M', :at), \"a:b\", [c:d] -- :not\n/* :nor */ FROM t";
        let n = number_named(sql).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            n.sql,
            "SELECT strftime('%H:%M', ?1), \"a:b\", [c:d] -- :not\n/* :nor */ FROM t"
        );
        assert_eq!(n.names, vec!["at"]);
    }

    #[test]
    fn a_statement_without_names_is_unchanged() {
        let n = number_named("SELECT 1 FROM t WHERE a = ?1 AND b = ?12")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.sql, "SELECT 1 FROM t WHERE a = ?1 AND b = ?12");
        assert!(n.names.is_empty());
        assert_eq!(n.first, 13);
    }

    #[test]
    fn a_bare_question_mark_is_refused() {
        assert_eq!(
            number_named("SELECT ?1, ?"),
            Err(NamedSqlError::BareParameter(11))
        );
    }

    proptest! {
        #[test]
        fn numbering_never_panics(sql in ".{0,200}") {
            let _ = number_named(&sql);
        }

        #[test]
        fn every_name_becomes_its_number(names in proptest::collection::vec("[a-z_][a-z0-9_]{0,8}", 1..8)) {
            let sql = names.iter().map(|n| format!(":{n}")).collect::<Vec<_>>().join(", ");
            let n = number_named(&sql).unwrap_or_else(|e| panic!("{e}"));
            prop_assert!(!n.sql.contains(':'));
            let numbers: Vec<usize> = n.sql.split(", ")
                .map(|p| p.trim_start_matches('?').parse().unwrap_or(0))
                .collect();
            for (name, number) in names.iter().zip(numbers) {
                prop_assert_eq!(n.names.get(number - n.first), Some(&name.as_str()));
            }
        }
    }
}
