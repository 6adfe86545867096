<?php
/*
 * The PHP peer of `make bench`: the mod_hello API written the way a hosting
 * provider's customer would write it without the module. PHP 8.2 under
 * mod_php (Apache prefork), PDO with its default settings, a persistent
 * connection (PDO::ATTR_PERSISTENT) and prepared statements.
 *
 * bench/conf/httpd-php.conf.in maps every /hello/<name> here
 * (AliasMatch); the database settings come from SetEnv in the same file.
 *
 * Same contract as docs/API.md for what the benchmark exercises and for the
 * usual errors: PUT 204, GET/HEAD 200 with the greeting, 404 for an unknown
 * user or a path without one username, 405 (Allow: GET, HEAD, PUT), 400 for
 * an invalid username or body, 415 for another media type, 413 above 4096
 * bytes, 503 with Retry-After when the database is unavailable. The one
 * documented difference: json_decode() keeps the last of duplicate member
 * names where mod_hello refuses the body.
 */

const MAX_BODY = 4096;
const RETRY_AFTER = 5;

function answer(int $status, ?array $body = null, array $headers = []): void
{
    http_response_code($status);
    foreach ($headers as $h) {
        header($h);
    }
    if ($body === null) {
        ini_set('default_mimetype', '');
        return;
    }
    header('Content-Type: application/json');
    echo json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE);
}

function fail(int $status, string $reason, array $headers = []): void
{
    answer($status, ['error' => $reason], $headers);
}

function db(): PDO
{
    // Persistent: the connection outlives the request, one per Apache child.
    // Everything else is PDO's default: ERRMODE_EXCEPTION (PHP 8), emulated
    // prepares (pdo_mysql's default), buffered queries.
    return new PDO(
        getenv('HELLO_DB_DSN') ?: ($_SERVER['HELLO_DB_DSN'] ?? ''),
        getenv('HELLO_DB_USER') ?: ($_SERVER['HELLO_DB_USER'] ?? ''),
        getenv('HELLO_DB_PASS') ?: ($_SERVER['HELLO_DB_PASS'] ?? ''),
        [PDO::ATTR_PERSISTENT => true]
    );
}

function is_leap(int $y): bool
{
    return ($y % 4 === 0 && $y % 100 !== 0) || $y % 400 === 0;
}

// The birthday in a given year (UTC midnight): 29 February is 28 February
// in years without it.
function birthday_in(int $m, int $d, int $y): int
{
    if ($m === 2 && $d === 29 && !is_leap($y)) {
        $d = 28;
    }
    return gmmktime(0, 0, 0, $m, $d, $y);
}

$base = '/hello';
$now = $_SERVER['REQUEST_TIME'];
$today = gmdate('Y-m-d', $now);

// Apache hands REQUEST_URI over as the client sent it: decode the path as
// Apache decodes r->uri for the module.
$path = rawurldecode(strtok($_SERVER['REQUEST_URI'], '?'));
if (strncmp($path, $base . '/', strlen($base) + 1) !== 0) {
    fail(404, "not found: use $base/<username>");
    return;
}
$name = substr($path, strlen($base) + 1);
if ($name === '' || strpos($name, '/') !== false) {
    fail(404, "not found: use $base/<username>");
    return;
}
$method = $_SERVER['REQUEST_METHOD'];
if ($method !== 'GET' && $method !== 'HEAD' && $method !== 'PUT') {
    fail(405, 'method not allowed: use GET, HEAD or PUT', ['Allow: GET, HEAD, PUT']);
    return;
}
if (!preg_match('/^[A-Za-z]{1,64}$/D', $name)) {
    fail(400, 'username must be 1 to 64 ASCII letters (A-Z, a-z)');
    return;
}

if ($method === 'PUT') {
    $ctype = $_SERVER['CONTENT_TYPE'] ?? null;
    if ($ctype !== null && !preg_match('#^[ \t]*application/json[ \t]*(;.*)?$#Di', $ctype)) {
        fail(415, 'Content-Type must be application/json');
        return;
    }
    $tooLarge = 'request body too large: the limit is ' . MAX_BODY . ' bytes';
    if ((int)($_SERVER['CONTENT_LENGTH'] ?? 0) > MAX_BODY) {
        fail(413, $tooLarge);
        return;
    }
    $body = file_get_contents('php://input', false, null, 0, MAX_BODY + 1);
    if ($body === false) {
        fail(400, 'request body could not be read');
        return;
    }
    if (strlen($body) > MAX_BODY) {
        fail(413, $tooLarge);
        return;
    }
    $json = json_decode($body, false, 512, JSON_BIGINT_AS_STRING);
    if (!is_object($json)) {
        fail(400, 'request body must be a JSON object such as {"dateOfBirth":"2000-01-31"}');
        return;
    }
    $dob = $json->dateOfBirth ?? null;
    if (!is_string($dob)) {
        fail(400, 'dateOfBirth is required, as a string YYYY-MM-DD');
        return;
    }
    if (!preg_match('/^([0-9]{4})-([0-9]{2})-([0-9]{2})$/D', $dob, $m)
        || (int)$m[1] < 1000 || !checkdate((int)$m[2], (int)$m[3], (int)$m[1])) {
        fail(400, 'dateOfBirth must be a real date as YYYY-MM-DD, year 1000 or later');
        return;
    }
    if (strcmp($dob, $today) >= 0) {
        fail(400, 'dateOfBirth must be a date before today, as YYYY-MM-DD');
        return;
    }
    try {
        $st = db()->prepare('INSERT INTO hello_users (username, date_of_birth) VALUES (?, ?) '
            . 'ON DUPLICATE KEY UPDATE date_of_birth = VALUES(date_of_birth)');
        $st->execute([$name, $dob]);
    } catch (PDOException $e) {
        error_log('hello.php: upsert failed: ' . $e->getMessage());
        fail(503, 'the database is unavailable; retry later', ['Retry-After: ' . RETRY_AFTER]);
        return;
    }
    answer(204);
    return;
}

// GET and HEAD (Apache drops the body of a HEAD).
try {
    $st = db()->prepare('SELECT date_of_birth FROM hello_users WHERE username = ?');
    $st->execute([$name]);
    $row = $st->fetch(PDO::FETCH_NUM);
    $st->closeCursor();
} catch (PDOException $e) {
    error_log('hello.php: SELECT failed: ' . $e->getMessage());
    fail(503, 'the database is unavailable; retry later', ['Retry-After: ' . RETRY_AFTER]);
    return;
}
if ($row === false) {
    fail(404, 'no date of birth is saved for this username');
    return;
}
[$y, $mo, $d] = array_map('intval', explode('-', $row[0]));
[$ty, $tm, $td] = array_map('intval', explode('-', $today));
$t = gmmktime(0, 0, 0, $tm, $td, $ty);
$next = birthday_in($mo, $d, $ty);
if ($next < $t) {
    $next = birthday_in($mo, $d, $ty + 1);
}
$days = intdiv($next - $t, 86400);
answer(200, ['message' => $days === 0
    ? "Hello, $name! Happy birthday!"
    : "Hello, $name! Your birthday is in $days day(s)"]);
