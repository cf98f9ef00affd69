// Runs the steps given as JSON on stdin with Node's mysql2 client and prints one JSON line per
// step: what the client made of the server's answer (e2e/test_mysql2.py).
//
//   node mysql2_steps.js PORT [DATABASE] < steps.json
//
// A step is [kind, sql, params?]: "query" (text protocol, multi-statements allowed) or
// "execute" (a prepared statement: COM_STMT_PREPARE, cached by mysql2 per SQL text, then
// COM_STMT_EXECUTE). An answer is {rows, fields: [[name, type code]]} for a result set,
// {ok: {affected, insertId, info, changed}} for an OK, a list of those for several results, or
// {error: [errno, sqlState]}; errors never stop the run, so the connection's later steps show
// that it is still usable.
'use strict';
const mysql = require('mysql2/promise');

function answer(result, fields) {
  if (Array.isArray(result) && Array.isArray(fields) && fields.some(Array.isArray)) {
    return result.map((r, i) => answer(r, fields[i]));
  }
  if (Array.isArray(result)) {
    return {
      rows: result.map((row) => Object.values(row).map(plain)),
      fields: (fields || []).map((f) => [f.name, f.columnType]),
    };
  }
  return {
    ok: {
      affected: result.affectedRows,
      insertId: result.insertId,
      info: result.info,
      changed: result.changedRows,
    },
  };
}

// Values as JSON can carry them: Buffers as text, dates as their ISO text.
function plain(v) {
  if (Buffer.isBuffer(v)) return v.toString('latin1');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'bigint') return v.toString();
  return v;
}

async function main() {
  const [port, database] = process.argv.slice(2);
  const steps = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const conn = await mysql.createConnection({
    host: '127.0.0.1',
    port: Number(port),
    user: 'root',
    database: database || undefined,
    multipleStatements: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    connectTimeout: 10000,
  });
  for (const [kind, sql, params] of steps) {
    let out;
    try {
      const [result, fields] =
        kind === 'execute' ? await conn.execute(sql, params || []) : await conn.query(sql);
      out = answer(result, fields);
    } catch (e) {
      if (e.errno === undefined) throw e;
      out = { error: [e.errno, e.sqlState] };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  }
  await conn.end();
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
