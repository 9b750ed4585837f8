//! Embeds every `migrations/NNNN_name.sql` file, in version order, and every current-state
//! trigger or view in `schema/default/triggers/`, by name, into the platform crate, so each
//! component carries the schema and migrates the database on first use.

// A build script reports failure by panicking; that stops the build with the message.
#![allow(clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The `.sql` files in `dir`, sorted by name.
fn sql_files(dir: &Path) -> Vec<String> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    files
}

/// `pub const <constant>: &[(&str, &str)]`: each file's name and its text.
fn embed(out: &mut String, doc: &str, constant: &str, dir: &Path, files: &[String]) {
    let _ = writeln!(out, "/// {doc}\npub const {constant}: &[(&str, &str)] = &[");
    for name in files {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../..");
    let migrations = root.join("migrations");
    let files = sql_files(&migrations);
    for (i, name) in files.iter().enumerate() {
        let expected = format!("{:04}_", i + 1);
        assert!(
            name.starts_with(&expected),
            "migrations must be numbered 0001, 0002, … without gaps: found {name}, expected {expected}…"
        );
    }
    let mut out = String::new();
    embed(
        &mut out,
        "Every migration file, sorted by name (and so by version).",
        "MIGRATION_FILES",
        &migrations,
        &files,
    );
    let triggers = root.join("schema/default/triggers");
    embed(
        &mut out,
        "Every trigger and view as it is now, sorted by name.",
        "TRIGGER_FILES",
        &triggers,
        &sql_files(&triggers),
    );
    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("migrations.rs");
    std::fs::write(&target, out).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}
