//! The proof behind `tenant_sql!`: every tenant statement in the repository, parsed.
//!
//! `tenant_sql!` refuses at compile time a statement without `tenant_id = ?1` anywhere in it, a
//! first line of defence that a substring check can give. This test is the proof. It finds
//! every `tenant_sql!(…)` in `crates/` and `components/`, rebuilds each statement the way the
//! macro does (string literals and same-file `macro_rules!` column lists, joined), parses it
//! with sqlparser's SQLite dialect and checks:
//!
//! - every `SELECT`, `UPDATE` and `DELETE` that reads or writes a tenant table (any table with
//!   a `tenant_id` column in `migrations/`), in every `UNION` branch, subquery, derived table
//!   and CTE, is filtered by a top-level `AND` conjunct `tenant_id = ?1` (`?1 = tenant_id`, or
//!   qualified with that table's name or alias);
//! - every `INSERT` into a tenant table binds `tenant_id` to `?1`, in every `VALUES` row or in
//!   the projection of every `INSERT … SELECT` branch, and an upsert's `DO UPDATE` names
//!   `tenant_id` in its conflict target, so it can only update the tenant's own row;
//! - each `tenant_sql!` holds exactly one statement.
//!
//! It also runs the checker over known-bad statements, so it is shown to fail.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use sqlparser::ast::{
    Expr, FromTable, Insert, JoinConstraint, JoinOperator, OnConflictAction, OnInsert, Query,
    Select, SelectItem, SetExpr, Statement, TableFactor, TableObject, TableWithJoins,
    UpdateTableFromKind, Value, Visit, Visitor,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

// ---- the tenant tables, from the migrations ----

/// Every table created in `migrations/` with a `tenant_id` column.
fn tenant_tables() -> BTreeSet<String> {
    let mut tables = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sql") {
            let sql = std::fs::read_to_string(&path).unwrap();
            tables.extend(tables_with_tenant_id(&strip_sql_comments(&sql)));
        }
    }
    tables
}

fn strip_sql_comments(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The tables in `sql` that get a `tenant_id` column, by `CREATE TABLE` or `ADD COLUMN`.
fn tables_with_tenant_id(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = sql.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find("create table") {
        rest = &rest[at + "create table".len()..];
        let head = rest.trim_start();
        let head = head
            .strip_prefix("if not exists")
            .unwrap_or(head)
            .trim_start();
        let name: String = head
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = head.find('(') else { continue };
        let mut depth = 0;
        let mut body = String::new();
        for c in head[open..].chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            body.push(c);
            if depth == 0 {
                break;
            }
        }
        let body = &body[1..body.len() - 1];
        // Top-level items: column definitions and constraints.
        let mut depth = 0;
        let mut item = String::new();
        let mut items = Vec::new();
        for c in body.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        if items
            .iter()
            .any(|i| i.split_whitespace().next() == Some("tenant_id"))
        {
            found.push(name);
        }
    }
    for line in lower.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["alter", "table", table, "add", "column", "tenant_id", ..] = words.as_slice() {
            found.push(table.to_string());
        }
    }
    found
}

// ---- the statements, from the Rust sources ----

/// One `tenant_sql!` invocation, rebuilt.
struct Found {
    place: String,
    sql: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// `macro_rules! name { () => { "literal" }; }` in `file`: name → literal. With `exported`,
/// only the `#[macro_export]` ones, which other crates invoke by path (`platform::name!()`).
fn literal_macros(file: &syn::File, exported: bool) -> BTreeMap<String, String> {
    let mut macros = BTreeMap::new();
    for item in &file.items {
        if let syn::Item::Macro(m) = item
            && m.mac.path.is_ident("macro_rules")
            && let Some(name) = &m.ident
            && (!exported || m.attrs.iter().any(|a| a.path().is_ident("macro_export")))
        {
            let tokens: Vec<TokenTree> = m.mac.tokens.clone().into_iter().collect();
            // `() => { "…" }`
            if let [
                TokenTree::Group(args),
                TokenTree::Punct(eq),
                TokenTree::Punct(gt),
                TokenTree::Group(body),
                ..,
            ] = tokens.as_slice()
                && args.stream().is_empty()
                && eq.as_char() == '='
                && gt.as_char() == '>'
                && let Ok(lit) = syn::parse2::<syn::LitStr>(body.stream())
            {
                macros.insert(name.to_string(), lit.value());
            }
        }
    }
    macros
}

/// Finds `tenant_sql ! (…)` in a token stream, at any depth (so inside other macros too).
fn scan_tokens(
    tokens: TokenStream,
    macros: &BTreeMap<String, String>,
    place: &str,
    out: &mut Vec<Found>,
) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut i = 0;
    while i < tokens.len() {
        if let (TokenTree::Ident(id), Some(TokenTree::Punct(bang)), Some(TokenTree::Group(g))) =
            (&tokens[i], tokens.get(i + 1), tokens.get(i + 2))
            && id == "tenant_sql"
            && bang.as_char() == '!'
        {
            out.push(Found {
                place: place.to_string(),
                sql: rebuild(g.stream(), macros, place),
            });
            i += 3;
            continue;
        }
        if let TokenTree::Group(g) = &tokens[i] {
            scan_tokens(g.stream(), macros, place, out);
        }
        i += 1;
    }
}

/// The statement a `tenant_sql!(a, b!(), …)` builds: its parts joined, as `concat!` does.
fn rebuild(args: TokenStream, macros: &BTreeMap<String, String>, place: &str) -> String {
    let parts: syn::punctuated::Punctuated<syn::Expr, syn::Token![,]> =
        syn::parse::Parser::parse2(syn::punctuated::Punctuated::parse_terminated, args)
            .unwrap_or_else(|e| panic!("{place}: tenant_sql! arguments: {e}"));
    let mut sql = String::new();
    for part in parts {
        match part {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => sql.push_str(&s.value()),
            syn::Expr::Macro(m) => {
                // A path (`platform::name!()`) names an exported macro by its last segment.
                let name = m.mac.path.segments.last().map(|s| s.ident.to_string());
                let body = name
                    .as_ref()
                    .and_then(|n| macros.get(n))
                    .unwrap_or_else(|| {
                        panic!("{place}: {name:?}!() is not a one-literal macro of this file")
                    });
                sql.push_str(body);
            }
            _ => panic!("{place}: tenant_sql! takes string literals and column-list macros only"),
        }
    }
    sql
}

/// Walks the items of a parsed file: `tenant_sql!` appears in expressions, which syn keeps as
/// macros with unparsed tokens; [`scan_tokens`] reads those tokens.
struct MacroFinder<'a> {
    macros: &'a BTreeMap<String, String>,
    place: &'a str,
    out: &'a mut Vec<Found>,
}

impl<'ast> syn::visit::Visit<'ast> for MacroFinder<'_> {
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if mac.path.is_ident("tenant_sql") {
            self.out.push(Found {
                place: self.place.to_string(),
                sql: rebuild(mac.tokens.clone(), self.macros, self.place),
            });
        } else if !mac.path.is_ident("macro_rules") {
            scan_tokens(mac.tokens.clone(), self.macros, self.place, self.out);
        }
    }
}

/// Every `tenant_sql!` in `crates/` and `components/`, with how many times the text
/// `tenant_sql!(` appears outside comments there (to show none was missed).
fn find_statements() -> (Vec<Found>, usize) {
    let mut files = Vec::new();
    for dir in ["crates", "components"] {
        rust_files(&root().join(dir), &mut files);
    }
    let parsed: Vec<(PathBuf, String, syn::File)> = files
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path).unwrap();
            let file =
                syn::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, source, file)
        })
        .collect();
    let exported: BTreeMap<String, String> = parsed
        .iter()
        .flat_map(|(_, _, file)| literal_macros(file, true))
        .collect();
    let mut found = Vec::new();
    let mut textual = 0;
    for (path, source, file) in parsed {
        textual += source
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| l.matches("tenant_sql!(").count())
            .sum::<usize>();
        let place = path.strip_prefix(root()).unwrap().display().to_string();
        let mut macros = exported.clone();
        macros.extend(literal_macros(&file, false));
        syn::visit::Visit::visit_file(
            &mut MacroFinder {
                macros: &macros,
                place: &place,
                out: &mut found,
            },
            &file,
        );
    }
    (found, textual)
}

// ---- the checker ----

fn is_param_1(e: &Expr) -> bool {
    matches!(strip(e), Expr::Value(v) if matches!(&v.value, Value::Placeholder(p) if p == "?1"))
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner) => strip(inner),
        other => other,
    }
}

/// The top-level `AND` conjuncts of a condition, parentheses removed.
fn conjuncts<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match strip(e) {
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        other => out.push(other),
    }
}

/// The qualifier of a `tenant_id` column reference: `Some(None)` for a bare `tenant_id`,
/// `Some(Some(q))` for `q.tenant_id`, `None` for anything else.
fn tenant_column(e: &Expr, column: &str) -> Option<Option<String>> {
    match strip(e) {
        Expr::Identifier(id) if id.value.eq_ignore_ascii_case(column) => Some(None),
        Expr::CompoundIdentifier(ids)
            if ids.len() == 2 && ids[1].value.eq_ignore_ascii_case(column) =>
        {
            Some(Some(ids[0].value.to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// The qualifiers that `conditions` filter to `?1` by a top-level `<column> = ?1` conjunct.
fn filtered(conditions: &[&Expr], column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for condition in conditions {
        let mut parts = Vec::new();
        conjuncts(condition, &mut parts);
        for part in parts {
            if let Expr::BinaryOp {
                left,
                op: sqlparser::ast::BinaryOperator::Eq,
                right,
            } = part
            {
                if is_param_1(right)
                    && let Some(q) = tenant_column(left, column)
                {
                    out.push(q);
                } else if is_param_1(left)
                    && let Some(q) = tenant_column(right, column)
                {
                    out.push(q);
                }
            }
        }
    }
    out
}

/// The tables whose rows are keyed to a tenant, and by which column: every table with a
/// `tenant_id` column, and `tenants` itself by `id`.
struct Schema {
    tables: BTreeSet<String>,
}

impl Schema {
    fn key_column(&self, table: &str) -> Option<&'static str> {
        let table = table.to_ascii_lowercase();
        if table == "tenants" {
            Some("id")
        } else if self.tables.contains(&table) {
            Some("tenant_id")
        } else {
            None
        }
    }
}

fn table_name(name: &sqlparser::ast::ObjectName) -> String {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A tenant table read or written by one `SELECT`/`UPDATE`/`DELETE`: its name, the name it
/// goes by in the statement, and the `ON` condition it was joined with.
struct Use<'a> {
    table: String,
    alias: String,
    on: Option<&'a Expr>,
}

fn uses<'a>(from: &'a [TableWithJoins], out: &mut Vec<Use<'a>>, others: &mut usize) {
    for twj in from {
        factor(&twj.relation, None, out, others);
        for join in &twj.joins {
            let on = match &join.join_operator {
                JoinOperator::Join(c)
                | JoinOperator::Inner(c)
                | JoinOperator::Left(c)
                | JoinOperator::LeftOuter(c)
                | JoinOperator::Right(c)
                | JoinOperator::RightOuter(c)
                | JoinOperator::FullOuter(c)
                | JoinOperator::CrossJoin(c) => match c {
                    JoinConstraint::On(e) => Some(e),
                    _ => None,
                },
                _ => None,
            };
            factor(&join.relation, on, out, others);
        }
    }
}

fn factor<'a>(
    f: &'a TableFactor,
    on: Option<&'a Expr>,
    out: &mut Vec<Use<'a>>,
    others: &mut usize,
) {
    match f {
        TableFactor::Table { name, alias, .. } => {
            let table = table_name(name);
            let alias = alias
                .as_ref()
                .map_or_else(|| table.clone(), |a| a.name.value.to_ascii_lowercase());
            out.push(Use { table, alias, on });
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => uses(std::slice::from_ref(table_with_joins), out, others),
        // Derived tables and the like: their own queries are checked where they are visited.
        _ => *others += 1,
    }
}

/// Checks that each tenant table in `used` is filtered on its key by `where_` (or its own
/// `ON`): qualified by its name or alias, or bare when it is the only table in the clause.
fn check_filters(
    schema: &Schema,
    used: &[Use<'_>],
    others: usize,
    where_: Option<&Expr>,
) -> Result<(), String> {
    let single = used.len() + others == 1;
    for u in used {
        let Some(column) = schema.key_column(&u.table) else {
            continue;
        };
        let mut conditions: Vec<&Expr> = where_.into_iter().collect();
        conditions.extend(u.on);
        let ok = filtered(&conditions, column).iter().any(|q| match q {
            None => single,
            Some(q) => *q == u.alias,
        });
        if !ok {
            return Err(format!(
                "{} (as {}) is not filtered by a top-level `{column} = ?1`",
                u.table, u.alias
            ));
        }
    }
    Ok(())
}

fn check_select(schema: &Schema, select: &Select) -> Result<(), String> {
    let mut used = Vec::new();
    let mut others = 0;
    uses(&select.from, &mut used, &mut others);
    check_filters(schema, &used, others, select.selection.as_ref())
}

/// Checks every `SELECT` at the top of a query body, through set operations (`UNION`, …).
fn check_body(schema: &Schema, body: &SetExpr) -> Result<(), String> {
    match body {
        SetExpr::Select(s) => check_select(schema, s),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(schema, left)?;
            check_body(schema, right)
        }
        // Nested queries and everything below are visited on their own.
        SetExpr::Query(_) | SetExpr::Values(_) => Ok(()),
        other => Err(format!("unexpected query body: {other}")),
    }
}

/// Visits every query of a statement: the statement itself, subqueries, derived tables, CTEs.
struct QueryChecker<'a> {
    schema: &'a Schema,
    queries: usize,
}

impl Visitor for QueryChecker<'_> {
    type Break = String;
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        self.queries += 1;
        match check_body(self.schema, &query.body) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => ControlFlow::Break(e),
        }
    }
}

/// The expression each branch of an `INSERT`'s source puts in column `index`.
fn inserted_at<'a>(body: &'a SetExpr, index: usize, out: &mut Vec<Option<&'a Expr>>) {
    match body {
        SetExpr::Values(values) => {
            for row in &values.rows {
                out.push(row.get(index));
            }
        }
        SetExpr::Select(s) => out.push(s.projection.get(index).and_then(|item| match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })),
        SetExpr::SetOperation { left, right, .. } => {
            inserted_at(left, index, out);
            inserted_at(right, index, out);
        }
        SetExpr::Query(q) => inserted_at(&q.body, index, out),
        _ => out.push(None),
    }
}

fn check_insert(schema: &Schema, insert: &Insert) -> Result<(), String> {
    let TableObject::TableName(name) = &insert.table else {
        return Err("INSERT into a table function".into());
    };
    let table = table_name(name);
    let Some(column) = schema.key_column(&table) else {
        return Ok(());
    };
    let index = insert
        .columns
        .iter()
        .position(|c| c.value.eq_ignore_ascii_case(column))
        .ok_or_else(|| format!("INSERT INTO {table} does not name {column}"))?;
    let source = insert
        .source
        .as_ref()
        .ok_or_else(|| format!("INSERT INTO {table} has no VALUES or SELECT"))?;
    let mut bound = Vec::new();
    inserted_at(&source.body, index, &mut bound);
    if bound.is_empty() || !bound.iter().all(|e| e.is_some_and(is_param_1)) {
        return Err(format!(
            "INSERT INTO {table} does not bind {column} to ?1 in every row"
        ));
    }
    if let Some(OnInsert::OnConflict(c)) = &insert.on
        && matches!(c.action, OnConflictAction::DoUpdate(_))
    {
        let names_key = match &c.conflict_target {
            Some(sqlparser::ast::ConflictTarget::Columns(cols)) => {
                cols.iter().any(|c| c.value.eq_ignore_ascii_case(column))
            }
            _ => false,
        };
        if !names_key {
            return Err(format!(
                "INSERT INTO {table} … DO UPDATE without {column} in its conflict target"
            ));
        }
    }
    if insert.replace_into || insert.or.is_some() {
        return Err(format!(
            "INSERT OR … INTO {table}: REPLACE could delete another tenant's row"
        ));
    }
    Ok(())
}

/// SQLite's `a IS ?n` / `a IS NOT ?n`, which sqlparser does not read, spelled the standard way
/// (`IS NOT DISTINCT FROM` / `IS DISTINCT FROM`, the same meaning); nothing else changes.
fn standard_is(sql: &str) -> String {
    let words: Vec<&str> = sql.split_inclusive(char::is_whitespace).collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < words.len() {
        let word = |k: usize| words.get(k).map_or("", |w| w.trim());
        let param = |w: &str| {
            w.strip_prefix('?')
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        };
        if word(i).eq_ignore_ascii_case("is") {
            if param(word(i + 1)) {
                out.push_str("IS NOT DISTINCT FROM ");
                i += 1;
                continue;
            }
            if word(i + 1).eq_ignore_ascii_case("not") && param(word(i + 2)) {
                out.push_str("IS DISTINCT FROM ");
                i += 2;
                continue;
            }
        }
        out.push_str(words[i]);
        i += 1;
    }
    out
}

/// Checks one tenant statement; `Err` says what is wrong.
fn check(schema: &Schema, sql: &str) -> Result<(), String> {
    let statements = Parser::parse_sql(&SQLiteDialect {}, &standard_is(sql))
        .map_err(|e| format!("does not parse: {e}"))?;
    let [statement] = statements.as_slice() else {
        return Err(format!("{} statements, not one", statements.len()));
    };
    match statement {
        Statement::Query(_) => {}
        Statement::Insert(insert) => check_insert(schema, insert)?,
        Statement::Update {
            table,
            from,
            selection,
            ..
        } => {
            let mut used = Vec::new();
            let mut others = 0;
            uses(std::slice::from_ref(table), &mut used, &mut others);
            if let Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) = from
            {
                uses(f, &mut used, &mut others);
            }
            check_filters(schema, &used, others, selection.as_ref())?;
        }
        Statement::Delete(delete) => {
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
            let mut used = Vec::new();
            let mut others = 0;
            uses(from, &mut used, &mut others);
            if let Some(using) = &delete.using {
                uses(using, &mut used, &mut others);
            }
            check_filters(schema, &used, others, delete.selection.as_ref())?;
        }
        other => return Err(format!("not a SELECT, INSERT, UPDATE or DELETE: {other}")),
    }
    let mut queries = QueryChecker { schema, queries: 0 };
    if let ControlFlow::Break(e) = statement.visit(&mut queries) {
        return Err(e);
    }
    Ok(())
}

fn schema() -> Schema {
    Schema {
        tables: tenant_tables(),
    }
}

// ---- the tests ----

#[test]
fn the_tenant_tables_come_from_the_migrations() {
    let tables = tenant_tables();
    for expected in [
        "leads",
        "lead_events",
        "daily_rollups",
        "lead_facets",
        "idempotency_keys",
        "capture_rate",
        "event_applications",
        "applied_events",
        "systeme_tag_claims",
    ] {
        assert!(tables.contains(expected), "{expected} in {tables:?}");
    }
    assert!(!tables.contains("tenants"), "tenants is keyed by id");
}

#[test]
fn every_tenant_statement_in_the_repository_is_scoped_to_its_tenant() {
    let schema = schema();
    let (found, textual) = find_statements();
    assert_eq!(
        found.len(),
        textual,
        "every `tenant_sql!(` in the sources was rebuilt and checked"
    );
    assert!(
        found.len() > 20,
        "only {} tenant statements found: is the search looking in the right place?",
        found.len()
    );
    let failures: Vec<String> = found
        .iter()
        .filter_map(|f| {
            check(&schema, &f.sql)
                .err()
                .map(|e| format!("{}: {e}\n    {}", f.place, f.sql))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{} tenant statements checked", found.len());
}

#[test]
fn sqlite_is_is_read_as_the_standard_spelling() {
    assert_eq!(
        standard_is("ORDER BY a IS ?2 DESC, b IS NOT ?3, c IS NULL"),
        "ORDER BY a IS NOT DISTINCT FROM ?2 DESC, b IS DISTINCT FROM ?3, c IS NULL"
    );
}

#[test]
fn the_checker_accepts_scoped_statements() {
    let schema = schema();
    for sql in [
        "SELECT id FROM leads WHERE tenant_id = ?1",
        "SELECT id FROM leads WHERE (?1 = tenant_id) AND id = ?2",
        "SELECT id FROM leads WHERE tenant_id = ?1 AND (stage = ?2 OR stage = ?3)",
        "SELECT l.id FROM leads l JOIN lead_events e ON e.lead_id = l.id AND e.tenant_id = ?1 WHERE l.tenant_id = ?1",
        "SELECT kind FROM (SELECT kind FROM lead_events WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2)",
        "SELECT id FROM leads WHERE tenant_id = ?1 UNION ALL SELECT lead_id FROM lead_events WHERE tenant_id = ?1",
        "UPDATE leads SET stage = ?2 WHERE tenant_id = ?1 AND id = ?3",
        "DELETE FROM lead_events WHERE tenant_id = ?1 AND lead_id IN (SELECT id FROM leads WHERE tenant_id = ?1)",
        "INSERT INTO daily_rollups (tenant_id, day) VALUES (?1, ?2) ON CONFLICT (tenant_id, day) DO UPDATE SET leads = leads + 1",
        "INSERT INTO leads (id, tenant_id) SELECT ?2, ?1 WHERE NOT EXISTS (SELECT 1 FROM leads WHERE tenant_id = ?1 AND id = ?2)",
        "SELECT plan FROM tenants WHERE id = ?1",
    ] {
        assert_eq!(check(&schema, sql), Ok(()), "{sql}");
    }
}

#[test]
fn the_checker_rejects_statements_that_escape_the_tenant() {
    let schema = schema();
    for sql in [
        "SELECT id FROM leads",
        "SELECT id FROM leads WHERE NOT tenant_id = ?1",
        "SELECT id FROM leads WHERE tenant_id = ?1 OR 1 = 1",
        "SELECT id FROM leads WHERE email = ?2 OR tenant_id = ?1",
        "SELECT id FROM leads WHERE tenant_id = ?10",
        "SELECT id FROM leads WHERE tenant_id = ?2",
        "SELECT id FROM leads WHERE tenant_id != ?1",
        "SELECT id FROM leads WHERE tenant_id = ?1 -- AND the rest\n OR 1 = 1",
        "SELECT id FROM leads WHERE tenant_id = ?1 UNION SELECT id FROM leads",
        "SELECT id FROM leads WHERE tenant_id = ?1 AND id IN (SELECT lead_id FROM lead_events)",
        "SELECT id FROM leads WHERE tenant_id = ?1 AND EXISTS (SELECT 1 FROM leads WHERE tenant_id = ?1 OR 1)",
        "SELECT * FROM (SELECT * FROM leads) WHERE tenant_id = ?1",
        "WITH l AS (SELECT * FROM leads) SELECT id FROM l WHERE tenant_id = ?1",
        "SELECT l.id FROM leads l JOIN lead_events e ON e.lead_id = l.id WHERE l.tenant_id = ?1",
        "SELECT l.id FROM leads l, leads m WHERE l.tenant_id = ?1",
        "SELECT id FROM leads WHERE tenant_id = ?1; DELETE FROM leads",
        "UPDATE leads SET stage = 'x' WHERE id = ?2",
        "UPDATE leads SET stage = 'x' WHERE tenant_id = ?1 OR id = ?2",
        "DELETE FROM leads WHERE id = ?2",
        "DELETE FROM leads WHERE NOT (tenant_id = ?1)",
        "INSERT INTO leads (tenant_id, id) VALUES (?2, ?3)",
        "INSERT INTO leads (tenant_id, id) VALUES (?1, ?3), (?2, ?4)",
        "INSERT INTO leads (id, email) VALUES (?2, ?3)",
        "INSERT INTO leads (tenant_id, id) SELECT tenant_id, id FROM leads WHERE tenant_id = ?1",
        "INSERT INTO leads (tenant_id, id) SELECT ?1, ?2 UNION ALL SELECT ?2, ?3",
        "INSERT INTO idempotency_keys (tenant_id, key) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET key = excluded.key",
        "INSERT OR REPLACE INTO leads (tenant_id, id) VALUES (?1, ?2)",
        "SELECT plan FROM tenants WHERE id = ?2",
    ] {
        let refusal = check(&schema, sql).err();
        assert!(refusal.is_some(), "accepted: {sql}");
        // Refused for what it does, not because the checker could not read it.
        assert!(
            !refusal
                .as_deref()
                .unwrap_or_default()
                .starts_with("does not parse"),
            "{sql}: {refusal:?}"
        );
    }
}
