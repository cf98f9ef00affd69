-- sysbench (libmariadb through libmysqlclient's API) preparing `SELECT *`: its driver reads a
-- prepared statement's result only when the prepare announced columns, and crashed on rows
-- from one that announced none. Prints the rows of one execute.
function event()
  local con = sysbench.sql.driver():connect()
  local st = con:prepare("select * from e2e_sysbench_star where id >= ? order by id")
  local p = st:bind_create(sysbench.sql.type.INT)
  st:bind_param(p)
  p:set(2)
  local rs = st:execute()
  print("rows " .. rs.nrows)
  st:close()
  con:disconnect()
end
