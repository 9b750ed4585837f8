//! Versioned SQL migrations: file names and statement splitting.
//!
//! Spin's SQLite runs only the first statement of a string (see docs/spin-behaviour.md), so a
//! migration file is split into single statements before it is executed.

use thiserror::Error;

/// A migration file name that is not `NNNN_name.sql`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("migration file {0:?} must be named NNNN_name.sql (four digits, underscore, name)")]
pub struct BadMigrationName(pub String);

/// One forward-only migration. `version` is the file's number; it is at least 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    version: u32,
    name: String,
    sql: &'static str,
}

impl Migration {
    /// Parses `0003_add_leads.sql` into version 3, name `add_leads`.
    pub fn parse(file_name: &str, sql: &'static str) -> Result<Self, BadMigrationName> {
        let bad = || BadMigrationName(file_name.to_string());
        let stem = file_name.strip_suffix(".sql").ok_or_else(bad)?;
        let (number, name) = stem.split_once('_').ok_or_else(bad)?;
        if number.len() != 4 || !number.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
            return Err(bad());
        }
        let version: u32 = number.parse().map_err(|_| bad())?;
        if version == 0 {
            return Err(bad());
        }
        Ok(Self {
            version,
            name: name.to_string(),
            sql,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's statements, one per entry, without their terminating `;`.
    pub fn statements(&self) -> Vec<&'static str> {
        split_statements(self.sql)
    }
}

/// Splits SQL text into single statements at top-level `;`, respecting quoted strings and
/// identifiers (`'…'`, `"…"`, `` `…` ``, `[…]`) and comments (`-- …`, `/* … */`). Empty
/// statements and comment-only fragments are dropped.
///
/// A `CREATE TRIGGER … BEGIN …; …; END` statement is kept whole: inside it a `;` ends the
/// statement only after the closing `END`.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut has_code = false;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' | b'`' | b'[' => {
                let close = if b == b'[' { b']' } else { b };
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    if c == close {
                        // A doubled quote is an escaped quote inside the string.
                        if close != b']' && bytes.get(i) == Some(&close) {
                            i += 1;
                            continue;
                        }
                        break;
                    }
                }
                has_code = true;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len()
                    && !(bytes.get(i) == Some(&b'*') && bytes.get(i + 1) == Some(&b'/'))
                {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b';' if sql.get(start..i).is_some_and(inside_trigger_body) => {}
            b';' => {
                if has_code
                    && let Some(stmt) = sql.get(start..i).map(str::trim).filter(|s| !s.is_empty())
                {
                    out.push(stmt);
                }
                start = i + 1;
                has_code = false;
            }
            c if !c.is_ascii_whitespace() => has_code = true,
            _ => {}
        }
        i += 1;
    }
    if has_code && let Some(stmt) = sql.get(start..).map(str::trim).filter(|s| !s.is_empty()) {
        out.push(stmt);
    }
    out
}

/// Whether `fragment` is an unfinished `CREATE [TEMP] TRIGGER` (its last word is not `END`).
fn inside_trigger_body(fragment: &str) -> bool {
    let code: String = fragment
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<String> = code
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let is_trigger = words.first().is_some_and(|w| w == "CREATE")
        && words.iter().take(3).any(|w| w == "TRIGGER");
    is_trigger && words.last().is_none_or(|w| w != "END")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn migration_names_carry_their_version() {
        let m = Migration::parse("0012_add_leads.sql", "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((m.version(), m.name()), (12, "add_leads"));
    }

    #[test]
    fn malformed_migration_names_are_refused() {
        for bad in [
            "1_x.sql",
            "0001.sql",
            "0001_x.txt",
            "abcd_x.sql",
            "0000_zero.sql",
            "0001_.sql",
        ] {
            assert!(
                Migration::parse(bad, "").is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let sql = "CREATE TABLE a (x TEXT DEFAULT 'a;b');\n-- a comment; with a semicolon\nCREATE TABLE \"b;\" (y);\n/* block; */ INSERT INTO a VALUES ('it''s; fine');";
        assert_eq!(
            split_statements(sql),
            vec![
                "CREATE TABLE a (x TEXT DEFAULT 'a;b')",
                "-- a comment; with a semicolon\nCREATE TABLE \"b;\" (y)",
                "/* block; */ INSERT INTO a VALUES ('it''s; fine')",
            ]
        );
    }

    #[test]
    fn keeps_a_trigger_body_in_one_statement() {
        let sql = "CREATE TABLE a (x);\n-- counts\nCREATE TRIGGER a_count AFTER INSERT ON a BEGIN\n  UPDATE b SET n = n + 1;\n  INSERT INTO c VALUES (1);\nEND;\nCREATE TEMP TRIGGER t AFTER DELETE ON a BEGIN DELETE FROM c; END;\nSELECT 1";
        let stmts = split_statements(sql);
        assert_eq!(stmts.len(), 4, "{stmts:#?}");
        assert!(stmts[1].ends_with("INSERT INTO c VALUES (1);\nEND"));
        assert_eq!(
            stmts[2],
            "CREATE TEMP TRIGGER t AFTER DELETE ON a BEGIN DELETE FROM c; END"
        );
        assert_eq!(stmts[3], "SELECT 1");
    }

    #[test]
    fn drops_empty_and_comment_only_fragments() {
        assert_eq!(
            split_statements(";; -- only a comment\n ; SELECT 1"),
            vec!["SELECT 1"]
        );
        assert!(split_statements("  \n-- nothing\n").is_empty());
    }

    proptest! {
        #[test]
        fn splitting_never_panics_and_never_yields_empty_statements(sql in ".{0,200}") {
            for stmt in split_statements(&sql) {
                prop_assert!(!stmt.trim().is_empty());
            }
        }

        #[test]
        fn joined_simple_statements_split_back(parts in proptest::collection::vec("[a-z ]{1,20}[a-z]", 1..6)) {
            let joined = parts.join(";\n");
            let expected: Vec<&str> = parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
            prop_assert_eq!(split_statements(&joined), expected);
        }
    }
}
