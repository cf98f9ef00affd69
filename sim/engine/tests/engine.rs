//! Behaviour of the engine through its public API, compared with what MariaDB answers.

use shardgate_core::wire::consts::flag;
use shardgate_core::wire::{ColumnType, Value};
use shardgate_engine::{Engine, EngineSession, Outcome};

const NOW: u64 = 1_700_000_000_123; // 2023-11-14 22:13:20.123 UTC

struct T {
    e: Engine,
    s: EngineSession,
}

type Rows = Vec<Vec<Option<String>>>;

impl T {
    fn new() -> T {
        let mut e = Engine::new("8.0.40-shardgate-engine");
        let mut s = EngineSession::new(7, None);
        e.execute(&mut s, "create database d", NOW).unwrap();
        e.execute(&mut s, "use d", NOW).unwrap();
        T { e, s }
    }
    fn exec(&mut self, sql: &str) -> Outcome {
        match self.e.execute(&mut self.s, sql, NOW) {
            Ok(x) => x.outcome,
            Err(err) => panic!("{sql}: {err}"),
        }
    }
    fn ok(&mut self, sql: &str) -> (u64, u64, String) {
        match self.exec(sql) {
            Outcome::Ok(o) => (o.affected_rows, o.last_insert_id, o.info),
            other => panic!("{sql}: expected OK, got {other:?}"),
        }
    }
    fn q(&mut self, sql: &str) -> Rows {
        match self.exec(sql) {
            Outcome::Rows { rows, .. } => rows
                .into_iter()
                .map(|r| r.into_iter().map(|v| v.to_text()).collect())
                .collect(),
            other => panic!("{sql}: expected rows, got {other:?}"),
        }
    }
    /// Single row, cells as text with NULL spelled out.
    fn row(&mut self, sql: &str) -> Vec<String> {
        let rows = self.q(sql);
        assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
        rows[0]
            .iter()
            .map(|c| c.clone().unwrap_or_else(|| "NULL".into()))
            .collect()
    }
    fn one(&mut self, sql: &str) -> String {
        let r = self.row(sql);
        assert_eq!(r.len(), 1, "{sql}");
        r[0].clone()
    }
    fn names(&mut self, sql: &str) -> Vec<String> {
        match self.exec(sql) {
            Outcome::Rows { columns, .. } => columns.into_iter().map(|c| c.name).collect(),
            other => panic!("{other:?}"),
        }
    }
    fn err(&mut self, sql: &str) -> (u16, String, String) {
        match self.e.execute(&mut self.s, sql, NOW) {
            Ok(x) => panic!("{sql}: expected error, got {:?}", x.outcome),
            Err(e) => (e.code, e.sqlstate().to_string(), e.message),
        }
    }
    fn code(&mut self, sql: &str) -> u16 {
        self.err(sql).0
    }
}

fn sample() -> T {
    let mut t = T::new();
    t.ok("create table c (id int not null primary key, name varchar(20) not null, city varchar(20), unique key uk_name (name)) engine=InnoDB");
    t.ok("create table o (id bigint not null auto_increment primary key, cid int not null, amount decimal(10,2) not null, qty int not null, note varchar(100))");
    t.ok("insert into c values (1,'alice','paris'),(2,'bob','berlin'),(3,'carol','paris'),(4,'dave',NULL)");
    t.ok("insert into o (cid, amount, qty, note) values (1, 10.50, 1, 'a'), (1, 20.00, 2, NULL), (2, 5.25, 3, 'b'), (3, 100.00, 1, NULL)");
    t
}

#[test]
fn client_init_transcript() {
    let mut e = Engine::new("8.0.40-shardgate-engine");
    let mut s = EngineSession::new(42, None);
    let mut run = |sql: &str| e.execute(&mut s, sql, NOW).unwrap().outcome;
    match run("select @@version_comment limit 1") {
        Outcome::Rows { columns, rows } => {
            assert_eq!(columns[0].name, "@@version_comment");
            assert_eq!(rows.len(), 1);
        }
        o => panic!("{o:?}"),
    }
    assert!(matches!(run("SET NAMES utf8mb4"), Outcome::Ok(_)));
    assert!(matches!(run("SET autocommit=0"), Outcome::Ok(_)));
    match run("select database()") {
        Outcome::Rows { columns, rows } => {
            assert_eq!(columns[0].name, "database()");
            assert_eq!(rows, vec![vec![Value::Null]]);
        }
        o => panic!("{o:?}"),
    }
    match run("SELECT @@session.autocommit, @@character_set_client, @@max_allowed_packet, @@version, CONNECTION_ID()") {
        Outcome::Rows { rows, .. } => {
            let t: Vec<_> = rows[0].iter().map(|v| v.to_text().unwrap()).collect();
            assert_eq!(t, ["0", "utf8mb4", "16777216", "8.0.40-shardgate-engine", "42"]);
        }
        o => panic!("{o:?}"),
    }
    assert!(!s.autocommit());
    assert!(!s.in_transaction());
    e.execute(&mut s, "create database x", NOW).unwrap();
    e.execute(&mut s, "create table x.t (a int)", NOW).unwrap();
    e.execute(&mut s, "select * from x.t", NOW).unwrap();
    assert!(s.in_transaction());
    e.execute(&mut s, "commit", NOW).unwrap();
    assert!(!s.in_transaction());
    e.execute(&mut s, "SET autocommit=1", NOW).unwrap();
    assert!(s.autocommit());
}

#[test]
fn select_without_from_and_names() {
    let mut t = T::new();
    assert_eq!(
        t.row("select 1, 1+1, 'a', NULL, -5, 2.50"),
        ["1", "2", "a", "NULL", "-5", "2.50"]
    );
    assert_eq!(
        t.names("select 1, 1+1, 'a', count(*), 1 + 1 as two, NULL, -5, concat('a', 'b')"),
        [
            "1",
            "1+1",
            "a",
            "count(*)",
            "two",
            "NULL",
            "-5",
            "concat('a', 'b')"
        ]
    );
    assert_eq!(t.one("select 1/2"), "0.5000");
    assert_eq!(t.one("select 2/3"), "0.6667");
    assert_eq!(t.one("select 1/3*3"), "1.0000");
    assert_eq!(t.one("select 10.0/4"), "2.50000");
    assert_eq!(t.one("select 1/0"), "NULL");
    assert_eq!(t.one("select 7 div 2"), "3");
    assert_eq!(t.one("select 7 % 3"), "1");
    assert_eq!(t.one("select mod(-7, 3)"), "-1");
    assert_eq!(t.one("select 1.5 * 2"), "3.0");
    assert_eq!(t.one("select 0.1 + 0.2"), "0.3");
    assert_eq!(t.one("select 1e0 + 1"), "2");
    assert_eq!(t.one("select '3' + 4"), "7");
    assert_eq!(t.one("select 'abc' = 'ABC'"), "1");
    assert_eq!(t.one("select 10 = '10.0'"), "1");
    assert_eq!(t.one("select null = null"), "NULL");
    assert_eq!(t.one("select null <=> null"), "1");
    assert_eq!(t.one("select true and null"), "NULL");
    assert_eq!(t.one("select false and null"), "0");
    assert_eq!(t.one("select 1 xor 1"), "0");
    assert_eq!(t.one("select not 0"), "1");
    assert_eq!(t.one("select 5 between 1 and 10"), "1");
    assert_eq!(t.one("select 3 in (1, 2, null)"), "NULL");
    assert_eq!(t.one("select 'hello' like 'h_l%'"), "1");
    assert_eq!(t.one("select case when 1 > 2 then 'x' else 'y' end"), "y");
    assert_eq!(
        t.one("select case 2 when 1 then 'one' when 2 then 'two' end"),
        "two"
    );
    assert_eq!(t.one("select if(1, 1, 2.50)"), "1.00");
    assert_eq!(t.one("select x'4142'"), "AB");
    assert_eq!(
        t.one("select 9223372036854775807 + 0"),
        "9223372036854775807"
    );
    assert_eq!(t.code("select 9223372036854775807 + 1"), 1690);
    assert_eq!(t.one("select -9223372036854775808"), "-9223372036854775808");
}

#[test]
fn functions() {
    let mut t = T::new();
    assert_eq!(t.one("select concat('a', 1, 2.5)"), "a12.5");
    assert_eq!(t.one("select concat('a', null)"), "NULL");
    assert_eq!(t.one("select length('héllo')"), "6");
    assert_eq!(t.one("select char_length('héllo')"), "5");
    assert_eq!(
        t.one(
            "select upper('abc'), lower('ABC')"
                .replace(", lower('ABC')", "")
                .as_str()
        ),
        "ABC"
    );
    assert_eq!(t.one("select substring('Quadratically', 5, 6)"), "ratica");
    assert_eq!(
        t.one("select substring('Quadratically' from 5)"),
        "ratically"
    );
    assert_eq!(t.one("select substr('abc', -2)"), "bc");
    assert_eq!(t.one("select abs(-3)"), "3");
    assert_eq!(t.one("select round(2.5)"), "3");
    assert_eq!(t.one("select round(-2.5)"), "-3");
    assert_eq!(t.one("select round(1.2345, 2)"), "1.23");
    assert_eq!(t.one("select round(1234.5, -2)"), "1200");
    assert_eq!(
        t.one(
            "select floor(1.5), ceil(1.2)"
                .replace(", ceil(1.2)", "")
                .as_str()
        ),
        "1"
    );
    assert_eq!(t.one("select ceil(-1.5)"), "-1");
    assert_eq!(t.one("select ceiling(1.2)"), "2");
    assert_eq!(t.one("select coalesce(null, null, 3)"), "3");
    assert_eq!(t.one("select ifnull(null, 'x')"), "x");
    assert_eq!(t.one("select nullif(1, 1)"), "NULL");
    assert_eq!(t.one("select now()"), "2023-11-14 22:13:20");
    assert_eq!(t.one("select current_timestamp"), "2023-11-14 22:13:20");
    assert_eq!(t.one("select now(3)"), "2023-11-14 22:13:20.123");
    assert_eq!(t.one("select curdate()"), "2023-11-14");
    assert_eq!(t.one("select unix_timestamp()"), "1700000000");
    assert_eq!(t.one("select database()"), "d");
    assert_eq!(t.one("select schema()"), "d");
    assert_eq!(t.one("select version()"), "8.0.40-shardgate-engine");
    assert_eq!(t.one("select connection_id()"), "7");
    assert_eq!(t.one("select user()"), "root@localhost");
    assert_eq!(t.one("select trim('  x  ')"), "x");
    assert_eq!(t.one("select replace('aXbX', 'X', '-')"), "a-b-");
    assert_eq!(t.one("select lpad('7', 3, '0')"), "007");
    assert_eq!(t.one("select year('2024-03-05 10:00:00')"), "2024");
    assert_eq!(t.one("select greatest(1, 5, 3)"), "5");
    assert_eq!(t.one("select cast('12abc' as signed)"), "12");
    assert_eq!(t.one("select cast(3.7 as unsigned)"), "4");
    assert_eq!(
        t.one("select cast('2024-01-02 03:04:05' as date)"),
        "2024-01-02"
    );
    assert_eq!(t.code("select no_such_fn(1)"), 1305);
    assert_eq!(t.code("select length()"), 1582);
}

#[test]
fn sleep_sets_delay_without_blocking() {
    let mut e = Engine::new("v");
    let mut s = EngineSession::new(1, None);
    let x = e.execute(&mut s, "select sleep(2)", NOW).unwrap();
    assert_eq!(x.delay_ms, 2000);
    match x.outcome {
        Outcome::Rows { rows, .. } => assert_eq!(rows, vec![vec![Value::Int(0)]]),
        o => panic!("{o:?}"),
    }
    assert_eq!(e.execute(&mut s, "select 1", NOW).unwrap().delay_ms, 0);
    // A zero LIMIT is answered without executing the query, as MySQL does: no sleep, and the
    // columns are still described.
    let x = e
        .execute(&mut s, "select sleep(2) as s limit 0", NOW)
        .unwrap();
    assert_eq!(x.delay_ms, 0);
    match x.outcome {
        Outcome::Rows { columns, rows, .. } => {
            assert_eq!(columns[0].name, "s");
            assert!(rows.is_empty());
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn user_and_system_variables() {
    let mut t = T::new();
    t.ok("set @a = 1, @b = 'x'");
    assert_eq!(t.row("select @a, @b, @nope"), ["1", "x", "NULL"]);
    t.ok("SET @A = @a + 1");
    assert_eq!(t.one("select @a"), "2");
    t.ok("SET SESSION sql_mode = 'ANSI'");
    assert_eq!(t.one("select @@sql_mode"), "ANSI");
    t.ok("SET @@session.transaction_isolation = 'READ-COMMITTED'");
    assert_eq!(t.one("select @@tx_isolation"), "READ-COMMITTED");
    t.ok("SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci");
    t.ok("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
    t.ok("SET GLOBAL max_connections = 10");
    t.ok("set autocommit = ON");
    assert_eq!(t.code("select @@no_such_var"), 1193);
    assert_eq!(
        t.one("select @@version_comment"),
        "shardgate simulated engine"
    );
    assert!(t.one("select @@sql_mode").len() > 1);
}

#[test]
fn filters_order_limit() {
    let mut t = sample();
    assert_eq!(
        t.q("select id from c where city = 'PARIS' order by id desc"),
        vec![vec![Some("3".into())], vec![Some("1".into())]]
    );
    assert_eq!(
        t.q("select id, city from c order by city, id")
            .iter()
            .map(|r| r[0].clone().unwrap())
            .collect::<Vec<_>>(),
        ["4", "2", "1", "3"]
    );
    assert_eq!(t.q("select id from c order by 1 desc limit 2").len(), 2);
    assert_eq!(t.one("select id from c order by id limit 1 offset 2"), "3");
    assert_eq!(t.one("select id from c order by id limit 2, 1"), "3");
    assert_eq!(t.one("select id as x from c order by x desc limit 1"), "4");
    assert_eq!(t.one("select name from c where name like 'c%'"), "carol");
    assert_eq!(t.one("select count(*) from c where city is null"), "1");
    assert_eq!(
        t.q("select * from c where id in (2, 3, 9) order by id")
            .len(),
        2
    );
    assert_eq!(t.q("select * from c where id between 2 and 3").len(), 2);
    assert_eq!(t.q("select * from c where id > 1 and id <= 3").len(), 2);
    assert_eq!(t.q("select * from c where id = '2'").len(), 1);
    assert_eq!(t.q("select * from c where 2 = id").len(), 1);
    assert_eq!(t.q("select * from c where id = 2.0").len(), 1);
    assert_eq!(t.q("select * from c where id between 3 and 2").len(), 0);
    assert_eq!(t.names("select * from c"), ["id", "name", "city"]);
    assert_eq!(t.names("select c.* from c"), ["id", "name", "city"]);
    assert_eq!(t.names("select C.id from c as C"), ["id"]);
    assert_eq!(t.code("select x.id from c"), 1054);
}

#[test]
fn aggregates_and_grouping() {
    let mut t = sample();
    assert_eq!(
        t.row("select count(*), sum(qty), min(amount), max(amount), avg(amount), avg(qty) from o"),
        ["4", "7", "5.25", "100.00", "33.937500", "1.7500"]
    );
    assert_eq!(
        t.row("select count(note), count(distinct cid), sum(amount) from o"),
        ["2", "3", "135.75"]
    );
    assert_eq!(
        t.row("select count(*), sum(qty), avg(qty) from o where id > 100"),
        ["0", "NULL", "NULL"]
    );
    let g = t.q("select cid, count(*) as n from o group by cid having n > 1");
    assert_eq!(g, vec![vec![Some("1".into()), Some("2".into())]]);
    let g = t.q("select cid, sum(qty) from o group by cid order by sum(qty) desc, cid desc");
    assert_eq!(g[0], vec![Some("2".into()), Some("3".into())]);
    assert_eq!(t.q("select city, count(*) from c group by city").len(), 3);
    assert_eq!(t.q("select distinct city from c").len(), 3);
    assert_eq!(t.code("select id from c where count(*) > 1"), 1111);
    // Result metadata like MariaDB's.
    match t.exec("select count(*), sum(qty), avg(qty), name, city, amount from c join o on o.cid = c.id limit 1") {
        Outcome::Rows { columns, .. } => {
            assert_eq!(columns[0].col_type, ColumnType::LongLong);
            assert_eq!(columns[1].col_type, ColumnType::NewDecimal);
            assert_eq!(columns[2].col_type, ColumnType::NewDecimal);
            assert_eq!(columns[2].decimals, 4);
            assert_eq!(columns[3].col_type, ColumnType::VarString);
            assert_eq!(columns[3].org_table, "c");
            assert_ne!(columns[3].flags & flag::NOT_NULL, 0);
            assert_eq!(columns[4].flags & flag::NOT_NULL, 0);
            assert_eq!(columns[5].col_type, ColumnType::NewDecimal);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn joins() {
    let mut t = sample();
    let r = t.q("select c.name, o.amount from c join o on o.cid = c.id order by o.id");
    assert_eq!(r.len(), 4);
    assert_eq!(r[0], vec![Some("alice".into()), Some("10.50".into())]);
    let r = t.q("select c.id, o.id from c, o where c.id = o.cid and o.qty > 1 order by c.id");
    assert_eq!(r.len(), 2);
    let r = t.q("select c.id, o.id from c left join o on o.cid = c.id order by c.id, o.id");
    assert_eq!(r.len(), 5);
    assert_eq!(r[4], vec![Some("4".into()), None]);
    assert_eq!(t.code("select id from c join o on o.cid = c.id"), 1052);
    assert_eq!(
        t.one("select count(*) from (select cid from o group by cid) x"),
        "3"
    );
    assert_eq!(
        t.one("select name from c where id = (select max(cid) from o)"),
        "carol"
    );
    assert_eq!(
        t.q("select name from c where id in (select cid from o)")
            .len(),
        3
    );
}

#[test]
fn insert_auto_increment_and_last_insert_id() {
    let mut t = T::new();
    t.ok("create table a (id int unsigned not null auto_increment primary key, v varchar(10) default 'dflt')");
    // MySQL's counts for every INSERT but one of a single VALUES row.
    let records = |r: u64, d: u64| format!("Records: {r}  Duplicates: {d}  Warnings: 0");
    assert_eq!(
        t.ok("insert into a (v) values ('x'), ('y')"),
        (2, 1, records(2, 0))
    );
    assert_eq!(t.one("select last_insert_id()"), "1");
    assert_eq!(
        t.ok("insert into a values (null, 'z')"),
        (1, 3, String::new())
    );
    assert_eq!(t.ok("insert into a (id, v) values (10, 'w')").1, 10);
    assert_eq!(t.one("select last_insert_id()"), "3");
    assert_eq!(t.ok("insert into a (v) values (default)").1, 11);
    assert_eq!(t.ok("insert into a () values ()").1, 12);
    assert_eq!(t.one("select v from a where id = 11"), "dflt");
    assert_eq!(t.ok("insert into a set v = 'set'"), (1, 13, String::new()));
    assert_eq!(
        t.ok("insert ignore into a (id, v) values (13, 'dup'), (14, 'new')")
            .2,
        records(2, 1)
    );
    assert_eq!(
        t.ok("replace into a (id, v) values (14, 'again'), (15, 'new')"),
        (3, 15, records(2, 1))
    );
    assert_eq!(
        t.ok("insert into a (id, v) values (15, 'n'), (16, 'm') on duplicate key update v = 'u'"),
        (3, 16, records(2, 1))
    );
    assert_eq!(
        t.ok("insert into a (v) select v from a where id = 16").2,
        records(1, 0)
    );
    assert_eq!(t.code("insert into a (v) values ('x', 'y')"), 1136);
    assert_eq!(t.code("insert into a values (1)"), 1136);
    assert_eq!(t.code("insert into a (nope) values (1)"), 1054);
    let (code, state, msg) = t.err("insert into a (id, v) values (1, 'dup')");
    assert_eq!(
        (code, state.as_str(), msg.as_str()),
        (1062, "23000", "Duplicate entry '1' for key 'PRIMARY'")
    );
    t.ok("create table n (id int primary key, v int not null)");
    assert_eq!(t.code("insert into n values (1, null)"), 1048);
    assert_eq!(t.code("insert into n (id) values (1)"), 1364);
    assert_eq!(t.code("insert into n values (1, 'abc')"), 1366);
    assert_eq!(t.code("insert into n values (99999999999, 1)"), 1264);
    assert_eq!(t.ok("insert ignore into n values (1, 1), (1, 2)").0, 1);
    assert_eq!(t.ok("replace into n values (1, 5)").0, 2);
    assert_eq!(t.one("select v from n"), "5");
    assert_eq!(
        t.ok("insert into n values (1, 6) on duplicate key update v = v + values(v)")
            .0,
        2
    );
    assert_eq!(t.one("select v from n where id = 1"), "11");
    assert_eq!(
        t.ok("insert into n values (2, 6) on duplicate key update v = 0")
            .0,
        1
    );
}

#[test]
fn column_types_round_trip() {
    let mut t = T::new();
    t.ok("create table ty (id int primary key, ti tinyint, si smallint unsigned, mi mediumint, bi bigint unsigned, \
          de decimal(6,2), fl float, db double, ch char(5), vc varchar(10), tx text, bl blob, bn binary(3), vb varbinary(5), \
          da date, dt datetime, ts timestamp null, tm time, yr year, bt bit(8), en enum('a','b'), st set('x','y'), js json)");
    t.ok("insert into ty values (1, -128, 65535, 8388607, 18446744073709551615, 1234.567, 1.5, 2.25, 'ab  ', 'hello', 'text', 'blob', 'ab', 'vb', \
          '2024-02-29', '2024-02-29 12:34:56', '2024-01-01 00:00:00', '12:34:56', 2024, b'101', 'B', 'y,x', '{\"k\": [1, 2]}')");
    assert_eq!(
        t.row("select * from ty"),
        [
            "1",
            "-128",
            "65535",
            "8388607",
            "18446744073709551615",
            "1234.57",
            "1.5",
            "2.25",
            "ab",
            "hello",
            "text",
            "blob",
            "ab\0",
            "vb",
            "2024-02-29",
            "2024-02-29 12:34:56",
            "2024-01-01 00:00:00",
            "12:34:56",
            "2024",
            "\u{5}",
            "b",
            "x,y",
            "{\"k\": [1, 2]}"
        ]
    );
    match t.exec("select id, si, ch, vc, tx, bl, dt from ty") {
        Outcome::Rows { columns, .. } => {
            assert_eq!(columns[0].col_type, ColumnType::Long);
            assert_ne!(columns[0].flags & flag::PRI_KEY, 0);
            assert_ne!(columns[1].flags & flag::UNSIGNED, 0);
            assert_eq!(columns[2].col_type, ColumnType::String);
            assert_eq!(columns[3].col_type, ColumnType::VarString);
            assert_eq!(columns[4].col_type, ColumnType::Blob);
            assert_eq!(columns[4].charset, 45);
            assert_eq!(columns[5].charset, 63);
            assert_eq!(columns[6].col_type, ColumnType::DateTime);
            assert_eq!(columns[0].table, "ty");
            assert_eq!(columns[0].schema, "d");
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(t.code("insert into ty (id, ti) values (2, 200)"), 1264);
    assert_eq!(
        t.code("insert into ty (id, vc) values (2, 'this is too long')"),
        1406
    );
    assert_eq!(
        t.code("insert into ty (id, da) values (2, '2023-02-30')"),
        1292
    );
    assert_eq!(t.code("insert into ty (id, en) values (2, 'c')"), 1265);
    assert_eq!(t.code("insert into ty (id, js) values (2, '{bad')"), 4025);
}

#[test]
fn update_delete_counts() {
    let mut t = sample();
    assert_eq!(
        t.ok("update o set qty = qty + 1 where cid = 1"),
        (2, 0, "Rows matched: 2  Changed: 2  Warnings: 0".into())
    );
    assert_eq!(
        t.ok("update o set note = 'a' where id = 1").2,
        "Rows matched: 1  Changed: 0  Warnings: 0"
    );
    assert_eq!(t.ok("update o set qty = 0 order by id desc limit 1").0, 1);
    assert_eq!(t.one("select qty from o where id = 4"), "0");
    // Left-to-right assignment.
    t.ok("update o set qty = 5, amount = qty where id = 3");
    assert_eq!(
        t.row("select qty, amount from o where id = 3"),
        ["5", "5.00"]
    );
    assert_eq!(t.code("update c set id = 2 where id = 1"), 1062);
    assert_eq!(t.code("update c set name = null where id = 1"), 1048);
    assert_eq!(t.ok("delete from o where amount < 10").0, 1);
    assert_eq!(t.ok("delete from o order by id limit 1").0, 1);
    assert_eq!(t.one("select count(*) from o"), "2");
    assert_eq!(t.ok("delete from o").0, 2);
}

#[test]
fn transactions_and_rollback() {
    let mut t = sample();
    t.ok("begin");
    assert!(t.s.in_transaction());
    t.ok("insert into c values (10, 'tx', null)");
    t.ok("update c set city = 'x' where id = 1");
    t.ok("delete from c where id = 2");
    t.ok("update c set id = 20 where id = 3");
    assert_eq!(t.one("select count(*) from c"), "4");
    t.ok("rollback");
    assert!(!t.s.in_transaction());
    assert_eq!(
        t.q("select id, city from c order by id"),
        vec![
            vec![Some("1".into()), Some("paris".into())],
            vec![Some("2".into()), Some("berlin".into())],
            vec![Some("3".into()), Some("paris".into())],
            vec![Some("4".into()), None],
        ]
    );
    // Unique index restored too.
    assert_eq!(t.code("insert into c values (11, 'bob', null)"), 1062);

    t.ok("set autocommit = 0");
    t.ok("insert into c values (12, 'implicit', null)");
    assert!(t.s.in_transaction());
    t.ok("rollback");
    assert_eq!(t.one("select count(*) from c where id = 12"), "0");
    t.ok("insert into c values (13, 'kept', null)");
    t.ok("commit");
    t.ok("insert into c values (14, 'lost', null)");
    // Closing the connection rolls back.
    let mut s = std::mem::replace(&mut t.s, EngineSession::new(8, Some("d")));
    t.e.end_session(&mut s);
    assert_eq!(
        t.q("select id from c where id > 10"),
        vec![vec![Some("13".into())]]
    );

    // A failing statement inside a transaction undoes only itself.
    t.ok("begin");
    t.ok("insert into c values (20, 'twenty', null)");
    assert_eq!(
        t.code("insert into c values (21, 'x', null), (20, 'y', null)"),
        1062
    );
    assert_eq!(t.one("select count(*) from c where id >= 20"), "1");
    t.ok("commit");
    assert_eq!(t.one("select count(*) from c where id >= 20"), "1");
}

/// Savepoints as in MySQL/InnoDB: a name set again moves (the old mark is replaced, later
/// savepoints stay), ROLLBACK TO keeps the savepoint, and with autocommit off SAVEPOINT works
/// before any statement touched a table (the gateway sets one first on a fresh connection).
#[test]
fn savepoints_reused_name_and_autocommit_off() {
    let mut t = sample();
    t.ok("begin");
    t.ok("insert into c values (30, 'a', null)");
    t.ok("savepoint s");
    t.ok("insert into c values (31, 'b', null)");
    t.ok("savepoint u");
    // Set again: moves to after 32; `u` still exists.
    t.ok("insert into c values (32, 'c', null)");
    t.ok("savepoint S");
    t.ok("insert into c values (33, 'd', null)");
    t.ok("rollback to savepoint s");
    assert_eq!(
        t.q("select id from c where id >= 30 order by id"),
        vec![
            vec![Some("30".into())],
            vec![Some("31".into())],
            vec![Some("32".into())]
        ]
    );
    // Still there after ROLLBACK TO, and so is the earlier `u`.
    t.ok("rollback to savepoint s");
    t.ok("rollback to savepoint u");
    assert_eq!(t.one("select count(*) from c where id >= 30"), "2");
    assert_eq!(t.code("rollback to savepoint s"), 1305);
    t.ok("rollback");

    t.ok("set autocommit = 0");
    t.ok("savepoint first");
    t.ok("insert into c values (40, 'x', null)");
    t.ok("rollback to savepoint first");
    assert_eq!(t.one("select count(*) from c where id = 40"), "0");
    t.ok("commit");
    t.ok("set autocommit = 1");
}

#[test]
fn ddl_and_errors() {
    let mut t = T::new();
    assert_eq!(t.code("select * from nope"), 1146);
    let (_, state, msg) = t.err("select * from nope");
    assert_eq!(
        (state.as_str(), msg.as_str()),
        ("42S02", "Table 'd.nope' doesn't exist")
    );
    t.ok("create table if not exists x (a int)");
    t.ok("create table if not exists x (a int)");
    assert_eq!(t.code("create table x (a int)"), 1050);
    assert_eq!(t.code("create table y (a int auto_increment)"), 1075);
    assert_eq!(t.code("drop table nope"), 1051);
    t.ok("drop table if exists nope");
    assert_eq!(t.code("use nope"), 1049);
    assert_eq!(t.code("create database d"), 1007);
    t.ok("create database if not exists d");
    t.ok("create database e");
    t.ok("create table e.t (a int primary key) /*! ENGINE = innodb */");
    t.ok("insert into e.t values (1)");
    assert_eq!(t.one("select a from e.t"), "1");
    let dbs: Vec<String> = t
        .q("show databases")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert!(dbs.contains(&"e".to_string()) && dbs.contains(&"d".to_string()));
    assert_eq!(t.names("show tables"), ["Tables_in_d"]);
    assert_eq!(t.q("show tables"), vec![vec![Some("x".into())]]);
    t.ok("ALTER DATABASE d CHARACTER SET utf8mb4");
    t.ok("truncate table x");
    t.ok("drop database e");
    assert_eq!(t.code("select * from e.t"), 1146);
    t.ok("create table u (a int primary key, b int)");
    t.ok("insert into u values (1, 1), (2, 1)");
    assert_eq!(t.code("create unique index ub on u (b)"), 1062);
    t.ok("update u set b = 2 where a = 2");
    t.ok("create unique index ub on u (b)");
    assert_eq!(t.code("insert into u values (3, 2)"), 1062);
    t.ok("create index ib on u (b)");
    t.ok("drop index ub on u");
    t.ok("insert into u values (3, 2)");

    let (code, state, msg) = t.err("selec 1");
    assert_eq!((code, state.as_str()), (1064, "42000"));
    assert!(msg.ends_with("near 'selec 1' at line 1"), "{msg}");
    let (_, _, msg) = t.err("select 1 from x where\n a = = 1");
    assert!(msg.contains("at line 2"), "{msg}");
    assert_eq!(t.code(""), 1065);

    let mut s = EngineSession::new(2, None);
    let e = t.e.execute(&mut s, "select * from x", NOW).unwrap_err();
    assert_eq!((e.code, e.sqlstate()), (1046, "3D000"));
    assert_eq!(s.set_database("nope", &t.e).unwrap_err().code, 1049);
    s.set_database("d", &t.e).unwrap();
}

#[test]
fn prepared_parameters() {
    let mut t = sample();
    let r =
        t.e.execute_prepared(
            &mut t.s,
            "select name from c where id = ?",
            &[Value::Int(2)],
            NOW,
        )
        .unwrap();
    match r.outcome {
        Outcome::Rows { rows, .. } => assert_eq!(rows, vec![vec![Value::text("bob")]]),
        o => panic!("{o:?}"),
    }
    t.e.execute_prepared(
        &mut t.s,
        "insert into c (id, name, city) values (?, ?, ?)",
        &[Value::Int(9), Value::text("it's"), Value::Null],
        NOW,
    )
    .unwrap();
    assert_eq!(t.one("select name from c where id = 9"), "it's");
    let e =
        t.e.execute_prepared(&mut t.s, "select ?, ?", &[Value::Int(1)], NOW)
            .unwrap_err();
    assert_eq!(e.code, 1210);
}

#[test]
fn point_selects_do_not_scan() {
    let mut t = T::new();
    t.ok("CREATE TABLE sbtest1(id INTEGER NOT NULL AUTO_INCREMENT, k INTEGER DEFAULT '0' NOT NULL, c CHAR(120) DEFAULT '' NOT NULL, pad CHAR(60) DEFAULT '' NOT NULL, PRIMARY KEY (id)) /*! ENGINE = innodb */");
    t.ok("CREATE INDEX k_1 ON sbtest1(k)");
    let mut sql = String::from("insert into sbtest1 (k, c, pad) values ");
    for i in 0..20000 {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!("({}, 'c{i}', 'p')", i % 100));
    }
    t.ok(&sql);
    let start = std::time::Instant::now();
    for i in 1..=2000u64 {
        let r =
            t.e.execute_prepared(
                &mut t.s,
                "SELECT c FROM sbtest1 WHERE id=?",
                &[Value::UInt(i)],
                NOW,
            )
            .unwrap();
        match r.outcome {
            Outcome::Rows { rows, .. } => assert_eq!(rows.len(), 1),
            o => panic!("{o:?}"),
        }
    }
    // A scan of 20k rows per query would take far longer than this even in debug builds.
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
    assert_eq!(
        t.one("select count(*) from sbtest1 where id between 10 and 19"),
        "10"
    );
    assert_eq!(
        t.one("select sum(k) from sbtest1 where id >= 19990"),
        "1034"
    );
    t.ok("update sbtest1 set k = k + 1 where id = 5");
    assert_eq!(t.one("select k from sbtest1 where id = 5"), "5");
}

#[test]
fn never_panics_on_odd_input() {
    let mut t = sample();
    for sql in [
        "select",
        "select (",
        "select * from",
        "insert into c values",
        "select 1 +",
        "select ''''",
        "select 'unterminated",
        "select 1 from c where id between 5 and 1",
        "select * from c where id in ()",
        "select count(*) from c group by 5",
        "select -(-9223372036854775808)",
        "select 1 div 0",
        "select 1 % 0",
        "select repeat('a', -1)",
        "select substring('a', 0, -1)",
        "select cast('x' as date)",
        "select * from c order by 9",
        "select id from c limit 18446744073709551615",
        "create table z (a decimal(70,2))",
        "update c set id = id + 'x'",
        "select @@",
        "select @",
        "select 1e400",
        "show nonsense",
        "select b'102'",
        "select x'zz'",
        "select * from c as a join c as b",
        "select * from (select 1) as t",
        "select 1 union select 2",
        "select 1 union all select 1 order by 1 desc",
        "select sum(distinct qty) from o",
        "insert into o (cid, amount, qty) select id, 1, 1 from c",
        "select group_concat(name) from c",
        "select * from c where name = 1",
        "kill 5",
        "select now(7)",
        "select round(1, 100)",
    ] {
        let _ = t.e.execute(&mut t.s, sql, NOW);
    }
    assert_eq!(t.one("select 1"), "1");
}

/// CLIENT_FOUND_ROWS: matched rows count as affected, changed or not (UPDATE, and the
/// duplicates ON DUPLICATE KEY UPDATE touched), as MySQL counts them for such a client.
#[test]
fn found_rows_clients_count_matched_rows() {
    let mut t = T::new();
    t.ok("create table f (id int primary key, v int)");
    t.ok("insert into f values (1, 1), (2, 2)");
    let update = "update f set v = 1 where id <= 2";
    let matched = |c: u64| format!("Rows matched: 2  Changed: {c}  Warnings: 0");
    let odku = "insert into f values (1, 1), (3, 3) on duplicate key update v = values(v)";
    t.s.client_found_rows = true;
    assert_eq!(t.ok(update), (2, 0, matched(1)));
    assert_eq!(
        t.ok(odku),
        (2, 0, "Records: 2  Duplicates: 1  Warnings: 0".to_string())
    );
    t.s.client_found_rows = false;
    assert_eq!(t.ok(update), (0, 0, matched(0)));
}

/// The calendar is the caller's time plus the engine's epoch (0 unless set: the simulation's
/// calendar starts at the Unix epoch; the production binary sets the real one).
#[test]
fn the_epoch_shifts_the_calendar() {
    let mut t = T::new();
    assert_eq!(t.one("select unix_timestamp()"), "1700000000");
    t.e.set_epoch_ms(86_400_000);
    assert_eq!(t.one("select now()"), "2023-11-15 22:13:20");
    assert_eq!(t.one("select unix_timestamp()"), "1700086400");
}
