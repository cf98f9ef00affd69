//! Setup (a) of the differential SQL suite: scenarios/sql/*.slt on one simulated engine,
//! unsharded (no gateway): databases `ks` and `seq` on one `Engine`, one session, `USE ks`.
//!
//! The same records run through shardgate over 2 and 4 embedded shards and over 2 MariaDB
//! shards, and on MariaDB itself (e2e/test_differential.py, runner e2e/slt.py, which documents
//! the format). This runner carries the labels `unsharded` and `engine`.
//!
//! sim/tests/slt_sharded.rs reuses its parser to run the same records through the gateway over
//! 2 and 4 embedded shards in the L0 stepper (labels sharded, shards2/shards4, embedded).
//!
//! `SLT_VERBOSE=1 cargo test -p shardgate-engine --test slt -- --nocapture` also prints the
//! records marked xfail (known bugs) with the engine's answers.

use shardgate_core::wire::Value;
use shardgate_engine::{Engine, EngineSession, Outcome};
use std::path::{Path, PathBuf};

const NOW: u64 = 1_700_000_000_123;
const LABELS: &[&str] = &["unsharded", "engine"];

#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Ok,
    Count(u64),
    Error(u16),
    Rows,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub line: usize,
    pub is_query: bool,
    pub sql: String,
    pub onlyif: Vec<String>,
    pub skipif: Vec<String>,
    pub xfail: Vec<String>,
    pub expect: Expect,
    pub types: String,
    pub rowsort: bool,
    pub rows: Vec<String>,
}

impl Record {
    fn applies(&self) -> bool {
        self.onlyif.iter().all(|l| LABELS.contains(&l.as_str()))
            && !self.skipif.iter().any(|l| LABELS.contains(&l.as_str()))
    }
    fn expected_to_fail(&self) -> bool {
        self.xfail.iter().any(|l| LABELS.contains(&l.as_str()))
    }
    pub fn describe(&self) -> String {
        match &self.expect {
            Expect::Ok => "OK".into(),
            Expect::Count(n) => format!("OK, {n} row(s) affected"),
            Expect::Error(c) => format!("ERROR {c}"),
            Expect::Rows => format!("rows {:?}", self.rows),
        }
    }
}

pub fn parse(path: &Path) -> Vec<Record> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.split('\n').collect();
    let (mut onlyif, mut skipif, mut xfail) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = Vec::new();
    let mut i = 0;
    let at = |i: usize| format!("{}:{}", path.display(), i + 1);
    while i < lines.len() {
        let s = lines[i].trim();
        if s.is_empty() || s.starts_with('#') {
            i += 1;
            continue;
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        match words[0] {
            "onlyif" | "skipif" | "xfail" => {
                assert_eq!(words.len(), 2, "{}: {} takes one label", at(i), words[0]);
                let l = words[1].to_string();
                match words[0] {
                    "onlyif" => onlyif.push(l),
                    "skipif" => skipif.push(l),
                    _ => xfail.push(l),
                }
                i += 1;
                continue;
            }
            _ => {}
        }
        let header = i;
        let mut rec = Record {
            line: header + 1,
            is_query: false,
            sql: String::new(),
            onlyif: std::mem::take(&mut onlyif),
            skipif: std::mem::take(&mut skipif),
            xfail: std::mem::take(&mut xfail),
            expect: Expect::Ok,
            types: String::new(),
            rowsort: false,
            rows: Vec::new(),
        };
        match words.as_slice() {
            ["statement", "ok"] => rec.expect = Expect::Ok,
            ["statement", "count", n] => {
                rec.expect = Expect::Count(n.parse().unwrap_or_else(|_| panic!("{}", at(i))))
            }
            ["statement", "error", c] => {
                rec.expect = Expect::Error(c.parse().unwrap_or_else(|_| panic!("{}", at(i))))
            }
            ["query", types, rest @ ..] if rest.len() <= 1 => {
                assert!(
                    !types.is_empty() && types.chars().all(|c| "ITR".contains(c)),
                    "{}: bad query types {types}",
                    at(i)
                );
                rec.is_query = true;
                rec.expect = Expect::Rows;
                rec.types = types.to_string();
                match rest.first() {
                    None | Some(&"nosort") => {}
                    Some(&"rowsort") => rec.rowsort = true,
                    Some(m) => panic!("{}: unknown sort mode {m}", at(i)),
                }
            }
            _ => panic!("{}: expected a record, got: {s}", at(i)),
        }
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i].trim_end());
            i += 1;
        }
        assert!(!sql.is_empty(), "{}: record without SQL", at(header));
        rec.sql = sql.join("\n");
        if i < lines.len() && lines[i].trim() == "----" {
            assert!(rec.is_query, "{}: ---- after a statement", at(header));
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                rec.rows
                    .push(lines[i].split_whitespace().collect::<Vec<_>>().join(" "));
                i += 1;
            }
        } else {
            assert!(!rec.is_query, "{}: query without ----", at(header));
        }
        out.push(rec);
    }
    assert!(
        onlyif.is_empty() && skipif.is_empty() && xfail.is_empty(),
        "{}: onlyif/skipif/xfail at the end of the file",
        path.display()
    );
    out
}

pub fn render(v: Option<String>) -> String {
    match v {
        None => "NULL".into(),
        Some(s) if s.is_empty() => "(empty)".into(),
        Some(s) => s,
    }
}

pub fn is_int(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_num(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    let (mant, exp) = match d.find(['e', 'E']) {
        Some(p) => (&d[..p], Some(&d[p + 1..])),
        None => (d, None),
    };
    let mut parts = mant.splitn(2, '.');
    let a = parts.next().unwrap_or("");
    let b = parts.next();
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    let mant_ok =
        digits(a) && b.is_none_or(digits) && !(a.is_empty() && b.is_none_or(|x| x.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mant_ok && exp_ok
}

/// Ok(answer) when the record passes, Err((why, answer)) when it fails.
fn run_record(
    e: &mut Engine,
    s: &mut EngineSession,
    rec: &Record,
) -> Result<String, (String, String)> {
    match e.execute(s, &rec.sql, NOW) {
        Err(err) => check_error(rec, err.code, &err.message),
        Ok(x) => match x.outcome {
            Outcome::Rows { columns, rows } => check_rows(rec, columns.len(), &rows),
            Outcome::Ok(ok) => check_ok(rec, ok.affected_rows),
        },
    }
}

/// An error answer against the record (this runner's and slt_sharded.rs's).
pub fn check_error(rec: &Record, code: u16, message: &str) -> Result<String, (String, String)> {
    let got = format!("ERROR {code}: {message}");
    if rec.expect == Expect::Error(code) {
        Ok(got)
    } else {
        Err(("unexpected error".into(), got))
    }
}

/// A result set against the record: rows (sorted under `rowsort`), column count, types.
pub fn check_rows(
    rec: &Record,
    columns: usize,
    rows: &[Vec<Value>],
) -> Result<String, (String, String)> {
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| render(v.to_text()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if rec.rowsort {
        got.sort();
    }
    let shown = format!("rows {got:?}");
    if !rec.is_query {
        return Err(("a statement record returned rows".into(), shown));
    }
    if columns != rec.types.len() {
        return Err((
            format!("{columns} column(s), the record says {}", rec.types.len()),
            shown,
        ));
    }
    if got != rec.rows {
        return Err(("rows differ".into(), shown));
    }
    for r in rows {
        for (t, v) in rec.types.chars().zip(r) {
            let Some(v) = v.to_text() else { continue };
            if (t == 'I' && !is_int(&v)) || (t == 'R' && !is_num(&v)) {
                return Err((format!("column type {t} but value {v:?}"), shown));
            }
        }
    }
    Ok(shown)
}

/// An OK answer against the record.
pub fn check_ok(rec: &Record, affected: u64) -> Result<String, (String, String)> {
    let got = format!("OK, {affected} row(s) affected");
    match rec.expect {
        Expect::Ok => Ok(got),
        Expect::Count(n) if n == affected => Ok(got),
        Expect::Count(_) => Err(("affected rows differ".into(), got)),
        Expect::Error(_) => Err(("expected an error".into(), got)),
        Expect::Rows => Err(("expected rows".into(), got)),
    }
}

pub fn suite_files() -> Vec<PathBuf> {
    // From sim/engine (this runner) or from sim (slt_sharded.rs includes this file).
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        base.join("../../scenarios/sql"),
        base.join("../scenarios/sql"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .unwrap_or_else(|| base.join("../../scenarios/sql"));
    let dir = dir.canonicalize().unwrap_or(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn differential_suite_on_one_unsharded_engine() {
    let verbose = std::env::var_os("SLT_VERBOSE").is_some();
    let files = suite_files();
    assert!(!files.is_empty(), "no scenarios/sql/*.slt");
    let mut failures = Vec::new();
    for path in &files {
        let records = parse(path);
        let mut e = Engine::new("8.0.40-shardgate-engine");
        let mut s = EngineSession::new(1, None);
        for setup in ["create database ks", "create database seq", "use ks"] {
            e.execute(&mut s, setup, NOW)
                .unwrap_or_else(|err| panic!("{setup}: {err}"));
        }
        let (mut run, mut passed, mut xfailed, mut failed, mut skipped) = (0, 0, 0, 0, 0);
        for rec in &records {
            if !rec.applies() {
                skipped += 1;
                continue;
            }
            run += 1;
            let where_ = format!("{}:{}", path.display(), rec.line);
            let r = run_record(&mut e, &mut s, rec);
            match (r, rec.expected_to_fail()) {
                (Ok(_), false) => passed += 1,
                (Err(_), true) => {
                    xfailed += 1;
                }
                (Ok(got), true) => {
                    failed += 1;
                    failures.push(format!(
                        "{where_}: marked xfail (a known bug) but passed: remove the marker\n    {}\n    got  {got}",
                        rec.sql
                    ));
                }
                (Err((why, got)), false) => {
                    failed += 1;
                    failures.push(format!(
                        "{where_}: {why}\n    {}\n    want {}\n    got  {got}",
                        rec.sql,
                        rec.describe()
                    ));
                }
            }
            if verbose && rec.expected_to_fail() {
                eprintln!("[xfail] {where_}: {}", rec.sql);
            }
        }
        eprintln!(
            "{}: {} records, {run} run, {passed} passed, {xfailed} known bugs (xfail), {failed} failed, {skipped} skipped",
            path.display(),
            records.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} record(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
