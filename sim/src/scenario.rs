//! Scenario files (`scenarios/**/*.scn`, DESIGN section 5): parsing into steps.
//!
//! ```text
//! # the property this scenario proves            (required: first non-blank line)
//! topology keyspace=commerce shards=0            (repeatable; default: the embedded default)
//! seed 7
//! world l1                                       (run in the turmoil world; default l0)
//! tune merge_queue_rows=4                       (gateway tuning, drawn small by sweeps)
//! xfail <the known bug>                          (must fail until the bug is fixed)
//! conn a [db=commerce] [user=root] [password=]   (connects; becomes current if none is)
//! on a                                           (current client for records)
//!
//! statement ok [affected=N] | statement error <code> [sqlstate]
//! <sql, one or more lines, until a blank line>
//!
//! query <types> [nosort|rowsort]
//! <sql>
//! ----
//! <expected rows, values separated by one space; NULL; (empty) for ''>
//!
//! send a <sql>                                   (non-blocking; `;` makes a batch)
//! await a <expectation>                          (optionally followed by ---- and rows)
//! prepare a s1 <sql>                             (+ optional `expect <expectation>` line)
//! execute a s1 [params...]                       (+ optional expect line and/or ---- rows)
//! fault shard=0 after_fields error=1105 [state=HY000]
//! fault shard=0 after_rows=3 error=2013
//! fault shard=0 drop_after_rows=2
//! fault shard=0 stall_after_rows=2 | fault shard=0 stall | fault shard=0 resume | resume shard=0
//! fault shard=0 after_ok error=1105              (an extra ERR after the next final OK)
//! fault shard=0 more_after_final                 (next final EOF/OK claims MORE_RESULTS)
//! fault shard=0 trailing_ok [held]               (... and a final OK follows, as after a CALL)
//! fault shard=0 drop                             (every connection of the shard closes now)
//! fault shard=80- on_query=commit error=1213     (next `commit` it receives: ROLLBACK runs
//!                                                  instead, answered ERR; `_` for spaces)
//! fault shard=80- on_query=commit drop           (... or the connection closes unexecuted)
//! fault split_packets [off]
//! crash shard=0 | restart shard=0
//! partition gateway shard=0 | partition gateway client=a | heal
//! latency gateway shard=0 20ms | latency gateway client=a 5ms   (world l1 only)
//! panic marker=<text> | panic off
//! disconnect a
//! kill query a from b                            (b sends KILL QUERY <a's connection id>;
//! kill a from b | kill connection a from b        + optional expect line, default `ok`;
//! kill query 9999 from b                          a number targets that id as written)
//! advance 50ms
//! expect closed a | expect open a
//! ```
//! Expectations: `ok [affected=N]`, `rows N`, `error <code> [sqlstate]`, `prepared`,
//! `connected`, `closed`, each optionally followed by `more` (the result carries
//! MORE_RESULTS). Lines starting with `#` are comments; on directive lines, `#` preceded by
//! whitespace starts a trailing comment (never inside record SQL). Errors read
//! `file:line: message`.

use crate::fault::{injected_error, QueryFault, ShardFault, Trailing};
use crate::harness::{ConnectOptions, Endpoint, KeyspaceSpec, TopologySpec, VSchemaSource};
use shardgate_core::wire::Value;
use std::path::Path;

/// A parsed scenario.
#[derive(Clone)]
pub struct Scenario {
    /// As given (e.g. `scenarios/errors/after_rows.scn`); names the snapshot.
    pub path: String,
    /// The first comment: what the scenario proves.
    pub property: String,
    pub topology: TopologySpec,
    pub seed: u64,
    /// `xfail <why>`: a known gateway bug this scenario reproduces. The scenario must fail
    /// (its transcript is still snapshotted); once it passes, the line must go.
    pub xfail: Option<String>,
    /// `tune merge_queue_rows=N`: the gateway's merge holds at most N rows per shard.
    pub merge_queue_rows: Option<usize>,
    /// `world l1`: run in the turmoil world (default: the L0 stepper).
    pub world: WorldKind,
    pub steps: Vec<Step>,
}

/// Which world runs a scenario.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum WorldKind {
    /// The L0 stepper: core, engines and clients stepped by hand.
    #[default]
    L0,
    /// turmoil: the real runtime-tokio driver on a simulated network.
    L1,
}

/// One step, with where it came from.
#[derive(Clone)]
pub struct Step {
    pub line: usize,
    /// The directive or record header as written (echoed into the transcript).
    pub text: String,
    pub kind: StepKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    No,
    Rows,
}

/// What a result must be.
#[derive(Clone, PartialEq)]
pub enum Expect {
    Connected,
    Ok {
        affected: Option<u64>,
        more: bool,
    },
    Rows {
        count: Option<usize>,
        more: bool,
        rows: Option<Vec<String>>,
        sort: Sort,
    },
    Error {
        code: u16,
        state: Option<String>,
    },
    Prepared,
    Closed,
}

#[derive(Clone)]
pub enum StepKind {
    Connect {
        client: String,
        opts: ConnectOptions,
        expect: Expect,
    },
    /// `on a`: later records use client a (resolved while parsing; echoed only).
    On {
        client: String,
    },
    /// `statement ok [affected=N]`: every result of the command succeeds (and the last one
    /// reports N affected rows).
    StatementOk {
        client: String,
        sql: String,
        affected: Option<u64>,
    },
    /// `statement error`: the command's results end with this error.
    StatementError {
        client: String,
        sql: String,
        code: u16,
        state: Option<String>,
    },
    /// `query`: one result set with these rows.
    Query {
        client: String,
        sql: String,
        columns: usize,
        sort: Sort,
        rows: Vec<String>,
    },
    Send {
        client: String,
        sql: String,
    },
    Await {
        client: String,
        expect: Expect,
    },
    Prepare {
        client: String,
        name: String,
        sql: String,
        expect: Expect,
    },
    Execute {
        client: String,
        name: String,
        params: Vec<Value>,
        expect: Expect,
    },
    Fault {
        shard: String,
        fault: ShardFault,
    },
    /// Every connection of the shard closes now.
    Drop {
        shard: String,
    },
    Stall {
        shard: String,
    },
    /// The shard host crashes (connections drop, new ones refused) until restarted.
    Crash {
        shard: String,
    },
    Restart {
        shard: String,
    },
    /// Nothing crosses between the gateway and the target until `heal`.
    Partition {
        target: Endpoint,
    },
    Heal,
    /// Messages between the gateway and the target take this long (L1 only).
    Latency {
        target: Endpoint,
        ms: u64,
    },
    Resume {
        shard: String,
    },
    SplitPackets(bool),
    Panic {
        marker: Option<String>,
    },
    Disconnect {
        client: String,
    },
    /// `from` sends `KILL [QUERY] <target's connection id>` and its answer is checked.
    Kill {
        from: String,
        target: KillTarget,
        query_only: bool,
        expect: Expect,
    },
    Advance {
        ms: u64,
    },
    ExpectClosed {
        client: String,
    },
    ExpectOpen {
        client: String,
    },
}

/// Whom a `kill` directive names.
#[derive(Clone, PartialEq, Eq)]
pub enum KillTarget {
    /// A scripted client: its connection id as the gateway announced it.
    Client(String),
    /// A connection id as written (e.g. one that does not exist).
    Id(u64),
}

struct Parser<'a> {
    path: &'a str,
    lines: Vec<&'a str>,
    i: usize,
    current: Option<String>,
}

/// Parses a scenario; `path` is used in error messages and the transcript header.
///
/// # Errors
/// `file:line: message` for the first problem found.
pub fn parse(path: &str, text: &str) -> Result<Scenario, String> {
    let mut p = Parser {
        path,
        lines: text.lines().collect(),
        i: 0,
        current: None,
    };
    p.scenario()
}

impl<'a> Parser<'a> {
    fn err(&self, line: usize, msg: impl AsRef<str>) -> String {
        format!("{}:{}: {}", self.path, line, msg.as_ref())
    }

    fn scenario(&mut self) -> Result<Scenario, String> {
        while self.i < self.lines.len() && self.lines[self.i].trim().is_empty() {
            self.i += 1;
        }
        let first = self.lines.get(self.i).map(|l| l.trim()).unwrap_or("");
        let property = match first.strip_prefix('#') {
            Some(p) if !p.trim().is_empty() => p.trim().to_string(),
            _ => return Err(self.err(
                self.i + 1,
                "the first line must be a `# comment` stating the property this scenario proves",
            )),
        };
        self.i += 1;
        let mut sc = Scenario {
            path: self.path.to_string(),
            property,
            topology: TopologySpec {
                keyspaces: Vec::new(),
                vschema: None,
            },
            seed: 0,
            xfail: None,
            merge_queue_rows: None,
            world: WorldKind::L0,
            steps: Vec::new(),
        };
        while self.i < self.lines.len() {
            let raw = self.lines[self.i];
            let n = self.i + 1;
            self.i += 1;
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (word, rest) = split_word(t);
            match word {
                "topology" => {
                    if !sc.steps.is_empty() {
                        return Err(self.err(n, "topology must come before the first step"));
                    }
                    let (ks, vschema) = self.topology(n, strip_comment(rest))?;
                    if sc.topology.keyspaces.iter().any(|k| k.name == ks.name) {
                        return Err(self.err(n, format!("keyspace {} declared twice", ks.name)));
                    }
                    if let Some(name) = vschema {
                        if sc.topology.vschema.is_some() {
                            return Err(
                                self.err(n, "one vschema= per scenario (it covers every keyspace)")
                            );
                        }
                        // Contents are read by `load`; `parse` stays free of I/O.
                        sc.topology.vschema = Some(VSchemaSource {
                            name,
                            json: String::new(),
                        });
                    }
                    sc.topology.keyspaces.push(ks);
                }
                "world" => {
                    if !sc.steps.is_empty() {
                        return Err(self.err(n, "world must come before the first step"));
                    }
                    sc.world = match strip_comment(rest) {
                        "l0" => WorldKind::L0,
                        "l1" => WorldKind::L1,
                        _ => return Err(self.err(n, "world l0 | world l1")),
                    };
                }
                "tune" => {
                    for (k, v) in self.pairs(n, strip_comment(rest))? {
                        match k {
                            "merge_queue_rows" => {
                                sc.merge_queue_rows =
                                    Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                                        self.err(n, "merge_queue_rows= takes a positive number")
                                    })?)
                            }
                            other => return Err(self.err(n, format!("unknown tuning {other}"))),
                        }
                    }
                }
                "xfail" => {
                    let why = strip_comment(rest);
                    if why.is_empty() {
                        return Err(self.err(n, "xfail <the known bug, in words>"));
                    }
                    sc.xfail = Some(why.to_string());
                }
                "seed" => {
                    sc.seed = strip_comment(rest)
                        .parse()
                        .map_err(|_| self.err(n, "seed takes an unsigned integer"))?;
                }
                "statement" | "query" => {
                    let step = self.record(n, t)?;
                    sc.steps.push(step);
                }
                _ => {
                    let kind = self.directive(n, word, rest)?;
                    sc.steps.push(Step {
                        line: n,
                        text: strip_comment(t).to_string(),
                        kind,
                    });
                }
            }
        }
        if sc.topology.keyspaces.is_empty() {
            sc.topology = TopologySpec::embedded_default();
        }
        Ok(sc)
    }

    fn topology(&self, n: usize, rest: &str) -> Result<(KeyspaceSpec, Option<String>), String> {
        let mut name = None;
        let mut shards = None;
        let mut vschema = None;
        for (k, v) in self.pairs(n, rest)? {
            match k {
                "keyspace" => name = Some(v.to_string()),
                "shards" => {
                    let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
                    if list.iter().any(|s| s.is_empty()) {
                        return Err(
                            self.err(n, "shards= takes a comma-separated list like 0 or -80,80-")
                        );
                    }
                    shards = Some(list);
                }
                "vschema" => vschema = Some(v.to_string()),
                other => return Err(self.err(n, format!("unknown topology key {other}"))),
            }
        }
        let ks = KeyspaceSpec {
            name: name.ok_or_else(|| self.err(n, "topology needs keyspace="))?,
            shards: shards.unwrap_or_else(|| vec!["0".into()]),
        };
        Ok((ks, vschema))
    }

    fn pairs<'s>(&self, n: usize, rest: &'s str) -> Result<Vec<(&'s str, &'s str)>, String> {
        rest.split_whitespace()
            .map(|w| {
                w.split_once('=')
                    .ok_or_else(|| self.err(n, format!("expected key=value, got {w}")))
            })
            .collect()
    }

    fn client_of(&self, n: usize) -> Result<String, String> {
        self.current
            .clone()
            .ok_or_else(|| self.err(n, "no current client: `conn a` or `on a` first"))
    }

    /// SQL lines after a record header, up to a blank line or `----`.
    fn sql_block(&mut self, n: usize) -> Result<String, String> {
        let mut sql = Vec::new();
        while self.i < self.lines.len() {
            let l = self.lines[self.i];
            if l.trim().is_empty() || l.trim() == "----" {
                break;
            }
            sql.push(l.trim_end());
            self.i += 1;
        }
        if sql.is_empty() {
            return Err(self.err(n, "the record has no SQL (it goes on the next lines)"));
        }
        Ok(sql.join("\n"))
    }

    /// Rows after a `----` line, up to a blank line.
    fn rows_block(&mut self) -> Option<Vec<String>> {
        if self.lines.get(self.i).map(|l| l.trim()) != Some("----") {
            return None;
        }
        self.i += 1;
        let mut rows = Vec::new();
        while self.i < self.lines.len() && !self.lines[self.i].trim().is_empty() {
            rows.push(self.lines[self.i].trim().to_string());
            self.i += 1;
        }
        Some(rows)
    }

    fn record(&mut self, n: usize, header: &str) -> Result<Step, String> {
        let header = strip_comment(header);
        let words: Vec<&str> = header.split_whitespace().collect();
        let client = self.client_of(n)?;
        let kind = match words.as_slice() {
            ["statement", "ok", rest @ ..] => {
                let affected = match rest {
                    [] => None,
                    [a] => Some(
                        a.strip_prefix("affected=")
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| self.err(n, "statement ok [affected=N]"))?,
                    ),
                    _ => return Err(self.err(n, "statement ok [affected=N]")),
                };
                StepKind::StatementOk {
                    client,
                    sql: self.sql_block(n)?,
                    affected,
                }
            }
            ["statement", "error", code, rest @ ..] => {
                let code = code
                    .parse()
                    .map_err(|_| self.err(n, "statement error takes a MySQL error code"))?;
                let state = match rest {
                    [] => None,
                    [s] if s.len() == 5 => Some(s.to_string()),
                    _ => return Err(self.err(n, "statement error <code> [sqlstate]")),
                };
                StepKind::StatementError {
                    client,
                    sql: self.sql_block(n)?,
                    code,
                    state,
                }
            }
            ["query", types, rest @ ..] => {
                let sort = match rest {
                    [] | ["nosort"] => Sort::No,
                    ["rowsort"] => Sort::Rows,
                    _ => return Err(self.err(n, "query <types> [nosort|rowsort]")),
                };
                let sql = self.sql_block(n)?;
                let rows = self
                    .rows_block()
                    .ok_or_else(|| self.err(n, "a query record needs ---- and the expected rows"))?;
                StepKind::Query {
                    client,
                    sql,
                    columns: types.len(),
                    sort,
                    rows,
                }
            }
            _ => {
                return Err(self.err(
                    n,
                    "records are `statement ok [affected=N]`, `statement error <code> [sqlstate]`, `query <types> [nosort|rowsort]`",
                ))
            }
        };
        Ok(Step {
            line: n,
            text: header.to_string(),
            kind,
        })
    }

    /// An optional `expect ...` line after prepare/execute/conn, then optional rows.
    fn trailing_expect(&mut self, default: Expect) -> Result<Expect, String> {
        let mut e = default;
        if let Some(rest) = self
            .lines
            .get(self.i)
            .and_then(|l| l.trim().strip_prefix("expect "))
        {
            let rest = strip_comment(rest);
            // `expect closed a` / `expect open a` are directives of their own.
            if !matches!(split_word(rest).0, "closed" | "open") {
                let n = self.i + 1;
                self.i += 1;
                e = self.expectation(n, rest)?;
            }
        }
        self.attach_rows(e)
    }

    fn attach_rows(&mut self, e: Expect) -> Result<Expect, String> {
        let rows = self.rows_block();
        Ok(match (e, rows) {
            (
                Expect::Rows {
                    count, more, sort, ..
                },
                Some(r),
            ) => Expect::Rows {
                count: count.or(Some(r.len())),
                more,
                rows: Some(r),
                sort,
            },
            (e, None) => e,
            (_, Some(_)) => {
                return Err(self.err(
                    self.i,
                    "expected rows (----) only follow a rows expectation",
                ))
            }
        })
    }

    fn expectation(&self, n: usize, text: &str) -> Result<Expect, String> {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let more = words.last() == Some(&"more");
        if more {
            words.pop();
        }
        let e = match words.as_slice() {
            [] if more => Expect::Rows { count: None, more, rows: None, sort: Sort::No },
            ["ok"] => Expect::Ok { affected: None, more },
            ["ok", a] => {
                let v = a
                    .strip_prefix("affected=")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| self.err(n, "ok [affected=N]"))?;
                Expect::Ok { affected: Some(v), more }
            }
            ["rows", c] => Expect::Rows {
                count: Some(c.parse().map_err(|_| self.err(n, "rows takes a count"))?),
                more,
                rows: None,
                sort: Sort::No,
            },
            ["rows"] => Expect::Rows { count: None, more, rows: None, sort: Sort::No },
            ["rowsort"] => Expect::Rows { count: None, more, rows: None, sort: Sort::Rows },
            ["error", code, rest @ ..] => {
                let code = code
                    .parse()
                    .map_err(|_| self.err(n, "error takes a MySQL error code"))?;
                let state = match rest {
                    [] => None,
                    [s] if s.len() == 5 => Some(s.to_string()),
                    _ => return Err(self.err(n, "error <code> [sqlstate]")),
                };
                Expect::Error { code, state }
            }
            ["prepared"] => Expect::Prepared,
            ["connected"] => Expect::Connected,
            ["closed"] => Expect::Closed,
            _ => {
                return Err(self.err(
                    n,
                    format!("unknown expectation `{text}` (ok [affected=N] | rows N | error <code> [sqlstate] | prepared | connected | closed, then optional `more`)"),
                ))
            }
        };
        if more
            && matches!(
                e,
                Expect::Error { .. } | Expect::Prepared | Expect::Connected | Expect::Closed
            )
        {
            return Err(self.err(n, "only ok and rows results can carry `more`"));
        }
        Ok(e)
    }

    fn name(&self, n: usize, w: &str, what: &str) -> Result<String, String> {
        if w.is_empty() || !w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.err(n, format!("{what} name expected, got `{w}`")));
        }
        Ok(w.to_string())
    }

    fn directive(&mut self, n: usize, word: &str, rest: &str) -> Result<StepKind, String> {
        let plain = strip_comment(rest);
        Ok(match word {
            "conn" => {
                let (c, opts_text) = split_word(plain);
                let client = self.name(n, c, "client")?;
                let mut opts = ConnectOptions::default();
                for (k, v) in self.pairs(n, opts_text)? {
                    match k {
                        "db" => opts.database = Some(v.to_string()),
                        "user" => opts.user = v.to_string(),
                        "password" => opts.password = v.to_string(),
                        other => return Err(self.err(n, format!("unknown conn option {other}"))),
                    }
                }
                if self.current.is_none() {
                    self.current = Some(client.clone());
                }
                let expect = self.trailing_expect(Expect::Connected)?;
                StepKind::Connect {
                    client,
                    opts,
                    expect,
                }
            }
            "on" => {
                let client = self.name(n, plain, "client")?;
                self.current = Some(client.clone());
                StepKind::On { client }
            }
            "send" => {
                let (c, sql) = split_word(plain);
                let client = self.name(n, c, "client")?;
                if sql.is_empty() {
                    return Err(self.err(n, "send <client> <sql>"));
                }
                StepKind::Send {
                    client,
                    sql: sql.to_string(),
                }
            }
            "await" => {
                let (c, e) = split_word(plain);
                let client = self.name(n, c, "client")?;
                let expect = self.expectation(n, e)?;
                let expect = self.attach_rows(expect)?;
                StepKind::Await { client, expect }
            }
            "prepare" => {
                let (c, rest) = split_word(plain);
                let (s, sql) = split_word(rest);
                let client = self.name(n, c, "client")?;
                let name = self.name(n, s, "statement")?;
                if sql.is_empty() {
                    return Err(self.err(n, "prepare <client> <name> <sql>"));
                }
                let expect = self.trailing_expect(Expect::Prepared)?;
                StepKind::Prepare {
                    client,
                    name,
                    sql: sql.to_string(),
                    expect,
                }
            }
            "execute" => {
                let (c, rest) = split_word(plain);
                let (s, params) = split_word(rest);
                let client = self.name(n, c, "client")?;
                let name = self.name(n, s, "statement")?;
                let params = parse_params(params).map_err(|e| self.err(n, e))?;
                let expect = self.trailing_expect(Expect::Rows {
                    count: None,
                    more: false,
                    rows: None,
                    sort: Sort::No,
                })?;
                StepKind::Execute {
                    client,
                    name,
                    params,
                    expect,
                }
            }
            "fault" => self.fault(n, plain)?,
            "resume" => {
                let pairs = self.pairs(n, plain)?;
                match pairs.as_slice() {
                    [("shard", s)] => StepKind::Resume {
                        shard: s.to_string(),
                    },
                    _ => return Err(self.err(n, "resume shard=<name>")),
                }
            }
            "crash" | "restart" => {
                let pairs = self.pairs(n, plain)?;
                let [("shard", s)] = pairs.as_slice() else {
                    return Err(self.err(n, format!("{word} shard=<name>")));
                };
                let shard = s.to_string();
                if word == "crash" {
                    StepKind::Crash { shard }
                } else {
                    StepKind::Restart { shard }
                }
            }
            "partition" => {
                let (g, rest) = split_word(plain);
                let pairs = self.pairs(n, rest)?;
                match (g, pairs.as_slice()) {
                    ("gateway", [("shard", s)]) => StepKind::Partition {
                        target: Endpoint::Shard(s.to_string()),
                    },
                    ("gateway", [("client", c)]) => StepKind::Partition {
                        target: Endpoint::Client(self.name(n, c, "client")?),
                    },
                    _ => {
                        return Err(self.err(
                            n,
                            "partition gateway shard=<name> | partition gateway client=<name>",
                        ))
                    }
                }
            }
            "heal" if plain.is_empty() => StepKind::Heal,
            "latency" => {
                let words: Vec<&str> = plain.split_whitespace().collect();
                let usage =
                    "latency gateway shard=<name> <N>ms | latency gateway client=<name> <N>ms";
                let ["gateway", t, d] = words.as_slice() else {
                    return Err(self.err(n, usage));
                };
                let ms = d
                    .strip_suffix("ms")
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| self.err(n, usage))?;
                let target = match t.split_once('=') {
                    Some(("shard", s)) => Endpoint::Shard(s.to_string()),
                    Some(("client", c)) => Endpoint::Client(self.name(n, c, "client")?),
                    _ => return Err(self.err(n, usage)),
                };
                StepKind::Latency { target, ms }
            }
            "panic" => match plain {
                "off" => StepKind::Panic { marker: None },
                _ => match plain.strip_prefix("marker=") {
                    Some(m) if !m.is_empty() => StepKind::Panic {
                        marker: Some(m.to_string()),
                    },
                    _ => return Err(self.err(n, "panic marker=<text> | panic off")),
                },
            },
            "disconnect" => StepKind::Disconnect {
                client: self.name(n, plain, "client")?,
            },
            "kill" => {
                let words: Vec<&str> = plain.split_whitespace().collect();
                let usage = "kill [query|connection] <client|id> from <client>";
                let (query_only, rest) = match words.as_slice() {
                    ["query", rest @ ..] => (true, rest),
                    ["connection", rest @ ..] => (false, rest),
                    rest => (false, rest),
                };
                let [t, "from", f] = rest else {
                    return Err(self.err(n, usage));
                };
                let target = match t.parse::<u64>() {
                    Ok(id) => KillTarget::Id(id),
                    Err(_) => KillTarget::Client(self.name(n, t, "client")?),
                };
                let from = self.name(n, f, "client")?;
                let expect = self.trailing_expect(Expect::Ok {
                    affected: None,
                    more: false,
                })?;
                StepKind::Kill {
                    from,
                    target,
                    query_only,
                    expect,
                }
            }
            "advance" => {
                let ms = plain
                    .strip_suffix("ms")
                    .and_then(|v| v.parse().ok())
                    .or_else(|| {
                        plain
                            .strip_suffix('s')
                            .and_then(|v| v.parse::<u64>().ok())
                            .map(|s| s * 1000)
                    })
                    .ok_or_else(|| self.err(n, "advance <N>ms | <N>s"))?;
                StepKind::Advance { ms }
            }
            "expect" => {
                let (w, c) = split_word(plain);
                match w {
                    "closed" => StepKind::ExpectClosed { client: self.name(n, c, "client")? },
                    "open" => StepKind::ExpectOpen { client: self.name(n, c, "client")? },
                    _ => {
                        return Err(self.err(
                            n,
                            "`expect closed a` / `expect open a` here; other expectations follow prepare/execute/conn directly",
                        ))
                    }
                }
            }
            other => return Err(self.err(n, format!("unknown directive `{other}`"))),
        })
    }

    fn fault(&self, n: usize, text: &str) -> Result<StepKind, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["split_packets"] | ["split_packets", "on"] => return Ok(StepKind::SplitPackets(true)),
            ["split_packets", "off"] => return Ok(StepKind::SplitPackets(false)),
            _ => {}
        }
        let mut shard = None;
        let mut kind: Option<(&str, Option<u64>)> = None;
        let mut error = None;
        let mut state = None;
        let mut held = false;
        let mut on_query: Option<String> = None;
        let mut drop = false;
        for w in words {
            let (k, v) = match w.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (w, None),
            };
            let num = |v: Option<&str>| -> Result<u64, String> {
                v.and_then(|v| v.parse().ok())
                    .ok_or_else(|| self.err(n, format!("{k}= takes a number")))
            };
            match k {
                "shard" => shard = v.map(str::to_string),
                "error" => error = Some(num(v)? as u16),
                "state" => state = v.map(str::to_string),
                "held" if v.is_none() => held = true,
                "on_query" => match v {
                    Some(q) if !q.is_empty() => {
                        on_query = Some(q.replace('_', " ").to_ascii_lowercase())
                    }
                    _ => return Err(self.err(n, "on_query=<statement words, _ for spaces>")),
                },
                "drop" if v.is_none() && on_query.is_some() => drop = true,
                "after_fields" | "stall" | "resume" | "after_ok" | "more_after_final"
                | "trailing_ok" | "drop"
                    if v.is_none() =>
                {
                    kind = Some((k, None))
                }
                "after_rows" | "drop_after_rows" | "stall_after_rows" => {
                    kind = Some((k, Some(num(v)?)))
                }
                _ => return Err(self.err(n, format!("unknown fault word `{w}`"))),
            }
        }
        let shard =
            shard.ok_or_else(|| self.err(n, "fault needs shard=<name> (or split_packets)"))?;
        let need_error =
            |e: Option<u16>| e.ok_or_else(|| self.err(n, "this fault needs error=<code>"));
        let state = state.as_deref();
        if let Some(prefix) = on_query {
            if kind.is_some() {
                return Err(self.err(n, "on_query= is a fault of its own"));
            }
            let fault = if drop {
                QueryFault::Drop
            } else {
                QueryFault::Error(injected_error(need_error(error)?, state))
            };
            return Ok(StepKind::Fault {
                shard,
                fault: ShardFault::OnQuery { prefix, fault },
            });
        }
        Ok(match kind {
            Some(("after_fields", _)) => StepKind::Fault {
                shard,
                fault: ShardFault::ErrorAfterRows { rows: 0, error: injected_error(need_error(error)?, state) },
            },
            Some(("after_rows", Some(rows))) => StepKind::Fault {
                shard,
                fault: ShardFault::ErrorAfterRows { rows, error: injected_error(need_error(error)?, state) },
            },
            Some(("after_ok", _)) => StepKind::Fault {
                shard,
                fault: ShardFault::ErrorAfterOk { error: injected_error(need_error(error)?, state) },
            },
            Some(("drop_after_rows", Some(rows))) => StepKind::Fault { shard, fault: ShardFault::DropAfterRows { rows } },
            Some(("stall_after_rows", Some(rows))) => StepKind::Fault { shard, fault: ShardFault::StallAfterRows { rows } },
            Some(("more_after_final", _)) => StepKind::Fault {
                shard,
                fault: ShardFault::MoreResults {
                    then: Trailing::Nothing,
                },
            },
            Some(("trailing_ok", _)) => StepKind::Fault {
                shard,
                fault: ShardFault::MoreResults {
                    then: if held { Trailing::HeldOk } else { Trailing::Ok },
                },
            },
            Some(("drop", _)) => StepKind::Drop { shard },
            Some(("stall", _)) => StepKind::Stall { shard },
            Some(("resume", _)) => StepKind::Resume { shard },
            _ => {
                return Err(self.err(
                    n,
                    "fault shard=<name> after_fields|after_rows=N|after_ok error=<code> [state=S] | drop_after_rows=N | stall_after_rows=N | more_after_final | trailing_ok [held] | drop | stall | resume",
                ))
            }
        })
    }
}

/// Reads and parses a scenario file, and the VSchema file it names: looked up next to the
/// scenario first, then in the repository's `scenarios/vschema/`. `display` is the path shown
/// in errors, transcripts and snapshot names (e.g. `scenarios/errors/x.scn`).
///
/// # Errors
/// An unreadable file, or `file:line: message` from [`parse`].
pub fn load(file: &Path, display: &str) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{display}: {e}"))?;
    let mut sc = parse(display, &text)?;
    if let Some(v) = &mut sc.topology.vschema {
        let mut candidates = Vec::new();
        if let Some(dir) = file.parent() {
            candidates.push(dir.join(&v.name));
        }
        if let Some(root) = file
            .ancestors()
            .find(|a| a.file_name().is_some_and(|n| n == "scenarios"))
        {
            candidates.push(root.join("vschema").join(&v.name));
        }
        let found = candidates.iter().find(|c| c.is_file()).ok_or_else(|| {
            format!("{display}: vschema file {} not found next to the scenario or in scenarios/vschema/", v.name)
        })?;
        v.json =
            std::fs::read_to_string(found).map_err(|e| format!("{display}: {}: {e}", v.name))?;
    }
    Ok(sc)
}

/// `word rest...` with `rest` trimmed.
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, ""),
    }
}

/// Drops a trailing `# comment` (a `#` preceded by whitespace).
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 1..b.len() {
        if b[i] == b'#' && b[i - 1].is_ascii_whitespace() {
            return s[..i].trim();
        }
    }
    s.trim()
}

/// Parameters of `execute`: integers, decimals, 'quoted strings' (with '' for a quote), NULL.
pub fn parse_params(s: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix('\'') {
            let mut text = String::new();
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|(_, c)| *c) == Some('\'') {
                        text.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    text.push(c);
                }
            }
            let end = end.ok_or("unterminated string parameter")?;
            out.push(Value::text(&text));
            rest = body[end..].trim_start();
            continue;
        }
        let (w, r) = split_word(rest);
        rest = r;
        out.push(if w.eq_ignore_ascii_case("null") {
            Value::Null
        } else if let Ok(i) = w.parse::<i64>() {
            Value::Int(i)
        } else if let Ok(u) = w.parse::<u64>() {
            Value::UInt(u)
        } else if let Ok(d) = w.parse::<f64>() {
            Value::Double(d)
        } else {
            return Err(format!("parameter `{w}`: a number, 'string' or NULL"));
        });
    }
    Ok(out)
}

/// The index of the one shard a scenario line names (`is_match` on each of `displays`), or
/// an error listing the shards when none or several match.
pub(crate) fn one_shard(
    shard: &str,
    displays: &[&str],
    is_match: impl Fn(usize) -> bool,
) -> Result<usize, String> {
    let found: Vec<usize> = (0..displays.len()).filter(|&i| is_match(i)).collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!("no shard {shard}; shards: {}", displays.join(", "))),
        _ => Err(format!(
            "shard name {shard} is ambiguous; use keyspace/shard"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_file_and_line() {
        let e = parse("x.scn", "select 1\n").err().unwrap_or_default();
        assert!(e.starts_with("x.scn:1: "), "{e}");
        let e = parse("x.scn", "# p\nconn a\nfrobnicate\n")
            .err()
            .unwrap_or_default();
        assert_eq!(e, "x.scn:3: unknown directive `frobnicate`");
        let e = parse("x.scn", "# p\nstatement ok\nselect 1\n")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("x.scn:2: no current client"), "{e}");
    }

    #[test]
    fn records_and_directives_parse() {
        let text = "\n# proves x\ntopology keyspace=commerce shards=-80,80-\nseed 9\nconn a db=commerce\n\nquery II rowsort\nselect 1,\n 2\n----\n1 2\n\nsend a select 1; select 2   # batch\nawait a rows 1 more\nexecute a s1 1 'it''s' NULL 2.5\nexpect error 1064 42000\nfault shard=-80 after_rows=3 error=2013\nadvance 2s\n";
        let sc = parse("t.scn", text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sc.property, "proves x");
        assert_eq!(sc.seed, 9);
        assert_eq!(sc.topology.describe(), "commerce shards=-80,80-");
        let two = parse(
            "t.scn",
            "# p\ntopology keyspace=commerce shards=-80,80- vschema=commerce.json\ntopology keyspace=lookup\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            two.topology.describe(),
            "commerce shards=-80,80-; lookup shards=0; vschema=commerce.json"
        );
        assert_eq!(sc.steps.len(), 7);
        match &sc.steps[1].kind {
            StepKind::Query {
                sql, columns, rows, ..
            } => {
                assert_eq!(sql, "select 1,\n 2");
                assert_eq!(*columns, 2);
                assert_eq!(rows, &vec!["1 2".to_string()]);
            }
            _ => panic!("not a query"),
        }
        match &sc.steps[2].kind {
            StepKind::Send { sql, .. } => assert_eq!(sql, "select 1; select 2"),
            _ => panic!("not a send"),
        }
        match &sc.steps[4].kind {
            StepKind::Execute { params, expect, .. } => {
                assert_eq!(params.len(), 4);
                assert_eq!(params[1], Value::text("it's"));
                assert!(matches!(expect, Expect::Error { code: 1064, .. }));
            }
            _ => panic!("not an execute"),
        }
        assert!(matches!(sc.steps[6].kind, StepKind::Advance { ms: 2000 }));
    }
}
