//! The schema's files: versioned migrations (tables, indexes, backfills), the current-state
//! definitions of triggers (re-created after every migration), statement splitting, and the
//! codes a trigger raises.
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

/// A `schema/<database>/triggers/<name>.sql` file that is not one `CREATE TRIGGER <name>` (or
/// `CREATE VIEW <name>`) statement.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("schema file {0:?} must hold exactly one CREATE TRIGGER or CREATE VIEW named as the file")]
pub struct BadSchemaObject(pub String);

/// A trigger or view as it is now, from its own file. The migration runner drops every trigger
/// and view and creates these after it applies migrations, so a migration never restates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaObject {
    name: String,
    statement: &'static str,
}

impl SchemaObject {
    /// Parses `leads_inserted.sql`, which must hold `CREATE TRIGGER leads_inserted …` alone.
    pub fn parse(file_name: &str, sql: &'static str) -> Result<Self, BadSchemaObject> {
        let bad = || BadSchemaObject(file_name.to_string());
        let name = file_name.strip_suffix(".sql").ok_or_else(bad)?;
        let [statement] = split_statements(sql)[..] else {
            return Err(bad());
        };
        let code = strip_line_comments(statement);
        let words: Vec<&str> = code.split_whitespace().take(3).collect();
        let declares = matches!(
            words.as_slice(),
            [create, kind, declared]
                if create.eq_ignore_ascii_case("CREATE")
                    && (kind.eq_ignore_ascii_case("TRIGGER") || kind.eq_ignore_ascii_case("VIEW"))
                    && *declared == name
        );
        if !declares {
            return Err(bad());
        }
        Ok(Self {
            name: name.to_string(),
            statement,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `CREATE …` statement, without its terminating `;`.
    pub fn statement(&self) -> &'static str {
        self.statement
    }
}

/// An error a trigger raises on purpose, `RAISE(ABORT, 'cfe:<code>')`. The one place where
/// those codes are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerError {
    /// `event_applications_apply`: the lead changed since the callback read it.
    StaleLeadState,
}

impl TriggerError {
    const ALL: [Self; 1] = [Self::StaleLeadState];

    /// The code the trigger raises.
    pub fn code(self) -> &'static str {
        match self {
            Self::StaleLeadState => "cfe:stale_lead_state",
        }
    }

    /// The trigger error named in a storage error's message, if any.
    pub fn in_message(message: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| message.contains(e.code()))
    }
}

fn strip_line_comments(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
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
        if let Some((end, is_code)) = skip_quoted_or_comment(sql, i) {
            i = end;
            has_code |= is_code;
            continue;
        }
        match b {
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

/// A quoted string or identifier (`'…'`, `"…"`, `` `…` ``, `[…]`), which is code, or a comment
/// (`-- …`, `/* … */`), which is not, starting at byte `i`: the index just past it, and whether
/// it is code. `None` when none starts there.
pub(crate) fn skip_quoted_or_comment(sql: &str, i: usize) -> Option<(usize, bool)> {
    let bytes = sql.as_bytes();
    match (bytes.get(i)?, bytes.get(i + 1)) {
        (b'-', Some(b'-')) => Some((sql[i..].find('\n').map_or(bytes.len(), |n| i + n), false)),
        (b'/', Some(b'*')) => Some((
            sql[i + 2..]
                .find("*/")
                .map_or(bytes.len(), |n| i + 2 + n + 2),
            false,
        )),
        (&open @ (b'\'' | b'"' | b'`' | b'['), _) => {
            let close = if open == b'[' { b']' } else { open };
            let mut j = i + 1;
            while let Some(&c) = bytes.get(j) {
                j += 1;
                if c == close {
                    // A doubled quote is an escaped quote inside the string.
                    if close != b']' && bytes.get(j) == Some(&close) {
                        j += 1;
                        continue;
                    }
                    break;
                }
            }
            Some((j, true))
        }
        _ => None,
    }
}

/// Whether `fragment` is an unfinished `CREATE [TEMP] TRIGGER` (its last word is not `END`).
fn inside_trigger_body(fragment: &str) -> bool {
    let code = strip_line_comments(fragment);
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
    fn a_schema_object_is_one_create_named_as_its_file() {
        let t = SchemaObject::parse(
            "leads_inserted.sql",
            "-- what and why\nCREATE TRIGGER leads_inserted AFTER INSERT ON leads\nBEGIN\n    SELECT 1;\nEND;\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.name(), "leads_inserted");
        assert!(t.statement().starts_with("-- what and why\nCREATE TRIGGER"));
        assert!(t.statement().ends_with("END"));
        for (file, sql) in [
            (
                "other.sql",
                "CREATE TRIGGER leads_inserted AFTER INSERT ON leads BEGIN SELECT 1; END;",
            ),
            ("t.sql", "CREATE TABLE t (x)"),
            (
                "t.sql",
                "CREATE VIEW t AS SELECT 1; CREATE VIEW u AS SELECT 2;",
            ),
            ("t.sql", "-- nothing"),
            ("t.txt", "CREATE VIEW t AS SELECT 1"),
        ] {
            assert_eq!(
                SchemaObject::parse(file, sql),
                Err(BadSchemaObject(file.into())),
                "{sql}"
            );
        }
    }

    #[test]
    fn trigger_codes_are_read_back_from_messages() {
        let message = "Io(\"cfe:stale_lead_state\")";
        assert_eq!(
            TriggerError::in_message(message),
            Some(TriggerError::StaleLeadState)
        );
        assert_eq!(
            TriggerError::in_message("UNIQUE constraint failed: leads.id"),
            None
        );
    }

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
