-- Differential check of the simulated engine (sim/engine) against MariaDB.
-- e2e/test_engine_diff.py runs each statement, one by one, on the embedded default gateway and
-- directly on MariaDB, and compares the outcomes as text: the rows (in order when the statement
-- has ORDER BY, as sorted multisets otherwise), the affected-row count and last insert id of an
-- OK, or the error code. A statement ends with ';' at the end of a line; '--' lines are comments.

DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS tags;

CREATE TABLE customers (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(64) NOT NULL,
  city VARCHAR(64),
  UNIQUE KEY uk_name (name)
);
CREATE TABLE orders (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  qty INT NOT NULL,
  note VARCHAR(100)
);
CREATE TABLE tags (id INT PRIMARY KEY, tag VARCHAR(20));

-- inserts, multi-row, auto_increment
INSERT INTO customers (id, name, city) VALUES (1, 'alice', 'paris'), (2, 'bob', 'berlin'), (3, 'carol', 'paris'), (4, 'dave', NULL), (5, 'erin', 'rome');
INSERT INTO orders (customer_id, amount, qty, note) VALUES (1, 10.50, 1, 'first'), (1, 20.00, 2, NULL), (2, 5.25, 3, 'x'), (3, 100.00, 1, 'big'), (3, 0.99, 10, NULL), (5, 42.00, 4, 'y');
INSERT INTO orders (customer_id, amount, qty) VALUES (2, 1.00, 1);
INSERT INTO tags VALUES (1, 'red'), (2, 'green'), (3, 'red'), (4, NULL);

-- plain reads
SELECT * FROM customers ORDER BY id;
SELECT id, name FROM customers WHERE city = 'paris' ORDER BY id;
SELECT id FROM customers WHERE city IS NULL;
SELECT id FROM customers WHERE city IS NOT NULL AND id > 1;
SELECT id, city FROM customers ORDER BY city, id;
SELECT id, city FROM customers ORDER BY city DESC, id DESC;
SELECT name FROM customers WHERE id IN (2, 4, 6) ORDER BY name;
SELECT name FROM customers WHERE id BETWEEN 2 AND 4 ORDER BY id;
SELECT id, amount, qty FROM orders WHERE amount > 10 AND qty < 5 ORDER BY amount DESC;
SELECT id, amount FROM orders WHERE amount >= 5.25 OR note IS NULL ORDER BY id;
SELECT id, qty * 2, amount + 1 FROM orders ORDER BY id;
SELECT * FROM orders WHERE id = 999;

-- ORDER BY / LIMIT / OFFSET
SELECT id FROM orders ORDER BY id LIMIT 2;
SELECT id FROM orders ORDER BY id LIMIT 2 OFFSET 3;
SELECT id FROM orders ORDER BY id LIMIT 3, 2;
SELECT id FROM orders ORDER BY id DESC LIMIT 1;
SELECT id FROM orders ORDER BY id LIMIT 0;
SELECT id FROM orders ORDER BY id LIMIT 100 OFFSET 6;
SELECT customer_id, amount FROM orders ORDER BY customer_id ASC, amount DESC;

-- aggregates
SELECT COUNT(*) FROM orders;
SELECT COUNT(*), SUM(qty), MIN(amount), MAX(amount), AVG(amount), AVG(qty) FROM orders;
SELECT COUNT(note), COUNT(DISTINCT customer_id) FROM orders;
SELECT COUNT(*), SUM(qty), MIN(qty), MAX(qty), AVG(qty) FROM orders WHERE id > 1000;
SELECT customer_id, COUNT(*) FROM orders GROUP BY customer_id ORDER BY customer_id;
SELECT customer_id, SUM(amount), MIN(amount), MAX(amount), AVG(qty) FROM orders GROUP BY customer_id ORDER BY customer_id;
SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id;
SELECT tag, COUNT(*) FROM tags GROUP BY tag ORDER BY tag;
SELECT city, COUNT(*) FROM customers GROUP BY city ORDER BY city;
SELECT customer_id, SUM(qty) AS total FROM orders GROUP BY customer_id ORDER BY total DESC, customer_id;
SELECT MIN(name), MAX(name) FROM customers;

-- DISTINCT
SELECT DISTINCT city FROM customers;
SELECT DISTINCT city FROM customers ORDER BY city;
SELECT DISTINCT customer_id FROM orders ORDER BY customer_id;
SELECT DISTINCT tag FROM tags;

-- inner joins
SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id;
SELECT c.name, o.amount FROM customers AS c INNER JOIN orders AS o ON c.id = o.customer_id WHERE c.city = 'paris' ORDER BY o.amount;
SELECT c.id, o.id FROM customers c, orders o WHERE c.id = o.customer_id AND o.qty > 1 ORDER BY c.id, o.id;
SELECT c.city, COUNT(*), SUM(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.city ORDER BY c.city;
SELECT customers.name FROM customers JOIN tags ON tags.id = customers.id WHERE tags.tag = 'red' ORDER BY customers.name;

-- updates and deletes
UPDATE orders SET qty = qty + 1 WHERE customer_id = 1;
UPDATE orders SET note = 'same' WHERE id = 3;
UPDATE orders SET note = 'same' WHERE id = 3;
UPDATE orders SET amount = amount * 2, note = 'doubled' WHERE amount < 6;
UPDATE orders SET qty = 0 WHERE id = 12345;
SELECT id, customer_id, amount, qty, note FROM orders ORDER BY id;
DELETE FROM orders WHERE amount < 2;
DELETE FROM orders WHERE id = 12345;
SELECT id, amount FROM orders ORDER BY id;
UPDATE customers SET city = 'lyon' WHERE city IS NULL;
SELECT id, city FROM customers ORDER BY id;

-- auto_increment continues after deletes
INSERT INTO orders (customer_id, amount, qty) VALUES (4, 7.00, 1);
INSERT INTO orders (id, customer_id, amount, qty) VALUES (100, 4, 8.00, 1);
INSERT INTO orders (customer_id, amount, qty) VALUES (4, 9.00, 1), (4, 9.50, 2);
SELECT id, customer_id, amount FROM orders ORDER BY id;

-- errors
INSERT INTO customers (id, name, city) VALUES (1, 'zed', 'oslo');
INSERT INTO customers (id, name, city) VALUES (6, 'alice', 'oslo');
INSERT INTO customers (id, name, city) VALUES (7, 'gina', 'oslo'), (7, 'hank', 'oslo');
SELECT COUNT(*) FROM customers;
UPDATE customers SET id = 2 WHERE id = 1;
SELECT * FROM no_such_table;
INSERT INTO no_such_table VALUES (1);
SELECT no_such_column FROM customers;
SELECT id FROM customers WHERE no_such_column = 1;
UPDATE customers SET no_such_column = 1;
CREATE TABLE customers (id INT PRIMARY KEY);
SELEC 1;
SELECT * FROM customers WHERE;
DROP TABLE no_such_table;

-- transactions
BEGIN;
INSERT INTO tags VALUES (10, 'tx');
UPDATE tags SET tag = 'changed' WHERE id = 1;
SELECT id, tag FROM tags ORDER BY id;
ROLLBACK;
SELECT id, tag FROM tags ORDER BY id;
BEGIN;
INSERT INTO tags VALUES (11, 'kept');
DELETE FROM tags WHERE id = 2;
COMMIT;
SELECT id, tag FROM tags ORDER BY id;
START TRANSACTION;
DELETE FROM tags;
ROLLBACK;
SELECT COUNT(*) FROM tags;

-- catalog
SHOW TABLES;
DROP TABLE tags;
SELECT * FROM tags;
SHOW TABLES;
DROP TABLE orders;
DROP TABLE customers;
SHOW TABLES;
