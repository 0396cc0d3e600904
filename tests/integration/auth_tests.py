"""Auth integration tests (API.md §3): login, tokens, sessions, roles,
tenant isolation, the Redis session cache, and the admin command."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import time

import common
from common import BASE_CONFIG, _stack, check, outage_redis, problem, test
from harness import RedisServer, admin, request, wait_until

PASSWORD = "correct horse battery"
KEYS = {"it1": base64.urlsafe_b64decode("k" * 43 + "="), "it0": base64.urlsafe_b64decode("g" * 43 + "=")}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sign(header, payload, key=KEYS["it1"]):
    h = b64(json.dumps(header).encode())
    p = b64(json.dumps(payload).encode())
    sig = hmac.new(key, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64(sig))


def claims_of(token):
    return json.loads(unb64(token.split(".")[1]))


def new_tenant(st, users=(("admin", "admin"), ("operator", "operator"), ("viewer", "viewer"))):
    """Creates a tenant with users through the admin command; returns its name."""
    name = "t-" + secrets.token_hex(4)
    rc, out, err = admin(st.binary, st.config_path, "create-tenant", name)
    check(rc == 0, "create-tenant: %d %s" % (rc, err))
    for username, role in users:
        rc, out, err = admin(st.binary, st.config_path, "create-user", "--tenant", name,
                             "--username", username, "--role", role, stdin=PASSWORD + "\n")
        check(rc == 0, "create-user: %d %s" % (rc, err))
    return name


def post_json(port, path, body, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(port, "POST", path, h, json.dumps(body).encode())


class Client:
    """A logged-in client: its token and fingerprint cookie."""

    def __init__(self, port, tenant, username, password=PASSWORD):
        self.port = port
        r = post_json(port, "/api/v2/auth/login",
                      {"tenant": tenant, "username": username, "password": password})
        check(r.status == 200, "login %s/%s: %d %r" % (tenant, username, r.status, r.body[:200]))
        self.login = r
        self.body = r.json()
        self.token = self.body["access_token"]
        cookie = r.header("Set-Cookie")
        self.cookie = cookie.split(";")[0]  # "__Host-fgp=..."

    def headers(self, token=None, cookie=True):
        h = {"Authorization": "Bearer " + (token or self.token)}
        if cookie:
            h["Cookie"] = self.cookie
        return h

    def get(self, path, **kw):
        return request(self.port, "GET", path, self.headers(**kw))

    def post(self, path, body=None, **kw):
        if body is None:
            return request(self.port, "POST", path, self.headers(**kw), b"")
        return post_json(self.port, path, body, self.headers(**kw))

    def delete(self, path, **kw):
        return request(self.port, "DELETE", path, self.headers(**kw))


@test
def login_me_logout_then_token_is_revoked(s):
    tenant = new_tenant(s)
    c = Client(s.port, tenant, "operator")
    body = c.body
    check(body["token_type"] == "Bearer" and body["expires_in"] == 900, "token body %r" % body)
    check(body["user"]["username"] == "operator" and body["user"]["role"] == "operator", "user %r" % body)
    check(body["user"]["tenant"]["name"] == tenant, "tenant in login body")
    cookie = c.login.header("Set-Cookie")
    for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=Strict"):
        check(attr in cookie, "cookie lacks %s: %r" % (attr, cookie))
    check(cookie.startswith("__Host-fgp="), "cookie name")
    header = json.loads(unb64(c.token.split(".")[0]))
    check(header == {"alg": "HS256", "typ": "JWT", "kid": "it1"}, "header %r" % header)
    cl = claims_of(c.token)
    for k in ("sub", "tid", "roles", "sid", "iat", "nbf", "exp", "iss", "aud", "jti", "fgp"):
        check(k in cl, "claim %s missing: %r" % (k, cl))
    check(cl["roles"] == ["operator"] and cl["exp"] - cl["iat"] == 900, "claims %r" % cl)
    fgp_value = c.cookie.split("=", 1)[1]
    check(cl["fgp"] == hashlib.sha256(fgp_value.encode()).hexdigest(), "fgp = sha256(cookie)")
    r = c.get("/api/v2/me")
    check(r.status == 200, "me: %d %r" % (r.status, r.body))
    me = r.json()
    check(me["user"]["username"] == "operator" and me["tenant"]["name"] == tenant, "me %r" % me)
    check(me["roles"] == ["operator"], "roles in me")
    r = c.post("/api/v2/auth/logout")
    check(r.status == 204, "logout %d" % r.status)
    problem(c.get("/api/v2/me"), 401, "auth.session_revoked")
    problem(c.post("/api/v2/auth/refresh"), 401, "auth.session_revoked")
    problem(c.post("/api/v2/auth/logout"), 401, "auth.session_revoked")


@test
def wrong_credentials_get_one_answer(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    bodies = []
    for t, u, p in ((tenant, "ana", "wrong password"), (tenant, "nobody", PASSWORD),
                    ("no-such-tenant", "ana", PASSWORD)):
        r = post_json(s.port, "/api/v2/auth/login", {"tenant": t, "username": u, "password": p})
        b = problem(r, 401, "auth.invalid_credentials")
        check(r.header("Set-Cookie") is None, "no cookie on failure")
        bodies.append((b["title"], b["detail"]))
    check(len(set(bodies)) == 1, "same answer whether or not the user exists: %r" % bodies)


@test
def login_input_errors(s):
    p = s.port
    problem(request(p, "POST", "/api/v2/auth/login", {"Content-Type": "text/plain"}, b"{}"),
            415, "request.unsupported_media_type")
    problem(post_raw(p, b"{not json"), 400, "request.malformed_json")
    problem(post_raw(p, b"[1,2]"), 400, "request.malformed_json")
    problem(post_raw(p, b'{"a":1} trailing'), 400, "request.malformed_json")
    b = problem(post_json(p, "/api/v2/auth/login", {"tenant": "x", "username": "y"}), 400,
                "request.invalid_field")
    check("password" in b["detail"], "detail names the field: %r" % b["detail"])
    b = problem(post_json(p, "/api/v2/auth/login", {"tenant": "x", "username": "a b", "password": "p"}),
                400, "request.invalid_field")
    check("username" in b["detail"], "detail names username")
    problem(post_json(p, "/api/v2/auth/login", {"tenant": 5, "username": "a", "password": "p"}),
            400, "request.invalid_field")
    problem(post_raw(p, b'{"tenant":"' + b"x" * 2000 + b'"}'), 413, "request.too_large")
    problem(request(p, "GET", "/api/v2/auth/login"), 405, "route.method_not_allowed")


def post_raw(port, body):
    return request(port, "POST", "/api/v2/auth/login", {"Content-Type": "application/json"}, body)


@test
def refresh_issues_a_new_token_for_the_same_session(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    time.sleep(1.1)  # iat has one-second resolution
    r = c.post("/api/v2/auth/refresh")
    check(r.status == 200, "refresh %d %r" % (r.status, r.body))
    new = r.json()["access_token"]
    a, b = claims_of(c.token), claims_of(new)
    check(a["sid"] == b["sid"] and a["fgp"] == b["fgp"], "same session and fingerprint")
    check(a["jti"] != b["jti"] and b["iat"] > a["iat"], "a new token")
    check(c.get("/api/v2/me", token=new).status == 200, "the new token works")
    check(c.get("/api/v2/me").status == 200, "the old one too, until it expires")


@test
def fingerprint_cookie_is_required(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    problem(c.get("/api/v2/me", cookie=False), 401, "auth.fingerprint_mismatch")
    r = request(s.port, "GET", "/api/v2/me", {"Authorization": "Bearer " + c.token,
                                             "Cookie": "__Host-fgp=" + "A" * 43})
    problem(r, 401, "auth.fingerprint_mismatch")
    r = request(s.port, "GET", "/api/v2/me", {"Authorization": "Bearer " + c.token,
                                             "Cookie": "other=1; " + c.cookie + "; x=y"})
    check(r.status == 200, "cookie found among others: %d" % r.status)


@test
def token_errors_each_get_their_code(s):
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    good = claims_of(c.token)
    now = int(time.time())

    def me(token, cookie=True):
        return c.get("/api/v2/me", token=token, cookie=cookie)

    r = request(s.port, "GET", "/api/v2/me")
    problem(r, 401, "auth.missing_token")
    check((r.header("WWW-Authenticate") or "").startswith("Bearer"), "WWW-Authenticate")
    problem(request(s.port, "GET", "/api/v2/me", {"Authorization": "Basic YTpi"}), 401, "auth.invalid_token")
    hdr = {"alg": "HS256", "typ": "JWT", "kid": "it1"}
    cases = {
        "expired": (sign(hdr, dict(good, exp=now - 3600, iat=now - 7200, nbf=now - 7200)), "auth.token_expired"),
        "not yet valid": (sign(hdr, dict(good, nbf=now + 3600)), "auth.invalid_token"),
        "wrong aud": (sign(hdr, dict(good, aud="someone-else")), "auth.invalid_token"),
        "wrong iss": (sign(hdr, dict(good, iss="evil")), "auth.invalid_token"),
        "alg none": (b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." +
                     c.token.split(".")[1] + ".", "auth.invalid_token"),
        "alg HS512": (sign(dict(hdr, alg="HS512"), good), "auth.invalid_token"),
        "unknown kid": (sign(dict(hdr, kid="nope"), good), "auth.invalid_token"),
        "wrong key": (sign(hdr, good, key=b"x" * 32), "auth.invalid_token"),
        "tampered payload": (c.token.split(".")[0] + "." + b64(json.dumps(dict(good, roles=["admin"])).encode())
                             + "." + c.token.split(".")[2], "auth.invalid_token"),
        "truncated": (c.token[:-5], "auth.invalid_token"),
        "two parts": (".".join(c.token.split(".")[:2]), "auth.invalid_token"),
        "oversized": (c.token + "A" * 5000, "auth.invalid_token"),
        "garbage": ("a.b.c", "auth.invalid_token"),
    }
    for name, (token, code) in cases.items():
        r = me(token)
        try:
            b = problem(r, 401, code)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (name, e))
        check(token not in r.body.decode() and c.token not in r.body.decode(), "%s: token echoed" % name)
        check(b["detail"], "detail")
    # a token signed with the older key (rotation) is still accepted
    r = me(sign(dict(hdr, kid="it0"), good, key=KEYS["it0"]))
    check(r.status == 200, "rotated key accepted: %d %r" % (r.status, r.body))


@test
def roles_are_enforced(s):
    tenant = new_tenant(s)
    viewer, operator, adm = (Client(s.port, tenant, u) for u in ("viewer", "operator", "admin"))
    problem(viewer.get("/api/v2/users"), 403, "auth.forbidden")
    problem(operator.get("/api/v2/users"), 403, "auth.forbidden")
    problem(operator.post("/api/v2/users", {"username": "x", "password": PASSWORD, "role": "viewer"}),
            403, "auth.forbidden")
    r = adm.get("/api/v2/users")
    check(r.status == 200, "admin lists users: %d" % r.status)
    names = [u["username"] for u in r.json()["items"]]
    check(names == ["admin", "operator", "viewer"], "users of the tenant, sorted: %r" % names)
    check(r.json()["next_cursor"] is None, "cursor")
    check(all("password" not in json.dumps(u) for u in r.json()["items"]), "no hashes listed")
    # it takes no parameters (no paging yet): one would be silently ignored
    for q in ("limit=1", "cursor=x", "role=admin"):
        problem(adm.get("/api/v2/users?" + q), 400, "request.invalid_query")


@test
def admin_creates_users_and_revokes_all_their_sessions(s):
    tenant = new_tenant(s, (("boss", "admin"),))
    adm = Client(s.port, tenant, "boss")
    r = adm.post("/api/v2/users", {"username": "eve", "password": PASSWORD, "role": "operator"})
    check(r.status == 201, "create: %d %r" % (r.status, r.body))
    loc = r.header("Location")
    uid = r.json()["id"]
    check(loc == "/api/v2/users/" + uid, "Location %r" % loc)
    r = adm.get(loc)
    check(r.status == 200 and r.json()["username"] == "eve", "GET Location")
    problem(adm.post("/api/v2/users", {"username": "eve", "password": PASSWORD, "role": "viewer"}),
            409, "resource.conflict")
    problem(adm.post("/api/v2/users", {"username": "fred", "password": PASSWORD, "role": "root"}),
            400, "request.invalid_field")
    problem(adm.post("/api/v2/users", {"username": "fred", "password": "short", "role": "viewer"}),
            400, "request.invalid_field")
    problem(adm.get("/api/v2/users/no$such"), 400, "request.invalid_id")
    problem(adm.get("/api/v2/users/nosuchuser"), 404, "resource.not_found")
    e1, e2 = Client(s.port, tenant, "eve"), Client(s.port, tenant, "eve")
    check(e1.get("/api/v2/me").status == 200 and e2.get("/api/v2/me").status == 200, "eve in twice")
    r = adm.delete("/api/v2/users/%s/sessions" % uid)
    check(r.status == 204, "revoke all: %d %r" % (r.status, r.body))
    problem(e1.get("/api/v2/me"), 401, "auth.session_revoked")
    problem(e2.get("/api/v2/me"), 401, "auth.session_revoked")
    check(adm.get("/api/v2/me").status == 200, "the admin's own session lives on")
    Client(s.port, tenant, "eve")  # and eve can log in again


@test
def tenants_are_isolated(s):
    a, b = new_tenant(s), new_tenant(s)
    admin_a, admin_b = Client(s.port, a, "admin"), Client(s.port, b, "admin")
    users_a = admin_a.get("/api/v2/users").json()["items"]
    victim = [u for u in users_a if u["username"] == "viewer"][0]["id"]
    problem(admin_b.get("/api/v2/users/" + victim), 404, "resource.not_found")
    problem(admin_b.delete("/api/v2/users/%s/sessions" % victim), 404, "resource.not_found")
    ids_b = {u["id"] for u in admin_b.get("/api/v2/users").json()["items"]}
    check(victim not in ids_b, "lists are per tenant")
    v = Client(s.port, a, "viewer")
    check(v.get("/api/v2/me").status == 200, "the victim's session is untouched")


@test
def sessions_are_cached_in_redis_and_invalidated(s):
    redis = common.REDIS
    tenant = new_tenant(s, (("ana", "viewer"),))
    c = Client(s.port, tenant, "ana")
    sid = claims_of(c.token)["sid"]
    check(c.get("/api/v2/me").status == 200, "me")
    cached = redis.command("GET", "sess:" + sid)
    check(cached is not None and cached.startswith(b"+"), "session cached: %r" % cached)
    check(json.loads(cached[1:])["id"] == sid, "cached value is the session")
    ttl = redis.command("PTTL", "sess:" + sid)
    check(0 < ttl <= 1800 * 1000 * 1.1, "TTL bounded by the cap (+jitter): %r" % ttl)
    c.post("/api/v2/auth/logout")
    check(redis.command("GET", "sess:" + sid) == b"-", "tombstone after logout")


@test
def two_processes_share_revocation(s, binary):
    """Two fcgi_sse processes (each behind its own lighttpd) with one store
    and one Redis: a logout in one is seen by the other at once."""
    a = _stack(binary, name="proc-a")
    cfg = json.loads(json.dumps(a.config))
    b = _stack(binary, cfg, name="proc-b")
    try:
        tenant = new_tenant(a, (("ana", "viewer"),))
        c = Client(a.port, tenant, "ana")
        via_b = request(b.port, "GET", "/api/v2/me", c.headers())
        check(via_b.status == 200, "token from A works on B: %d %r" % (via_b.status, via_b.body))
        check(c.post("/api/v2/auth/logout").status == 204, "logout on A")
        problem(request(b.port, "GET", "/api/v2/me", c.headers()), 401, "auth.session_revoked")
    finally:
        a.cleanup()
        b.cleanup()


@test
def redis_outage_falls_back_to_the_store(s, binary):
    redis = RedisServer().start()
    st = _stack(binary, {"redis": outage_redis(redis)}, name="outage")
    try:
        tenant = new_tenant(st, (("ana", "viewer"),))
        c1 = Client(st.port, tenant, "ana")
        sid1 = claims_of(c1.token)["sid"]
        check(c1.get("/api/v2/me").status == 200, "me with Redis up")
        check(redis.command("EXISTS", "sess:" + sid1) == 1, "cached while up")
        redis.stop()
        t0 = time.monotonic()
        c2 = Client(st.port, tenant, "ana")  # login while Redis is down
        for c in (c1, c2):
            check(c.get("/api/v2/me").status == 200, "me while Redis is down")
        check(c2.post("/api/v2/auth/logout").status == 204, "logout while Redis is down")
        problem(c2.get("/api/v2/me"), 401, "auth.session_revoked")
        check(time.monotonic() - t0 < 5, "no request hung on the dead Redis")
        redis.start_on_same_port()
        sid2 = claims_of(c2.token)["sid"]
        # the tombstone queued during the outage is written once Redis is back
        check(wait_until(lambda: c1.get("/api/v2/me").status == 200 and
                         redis.command("EXISTS", "sess:" + sid1) == 1, 5, 0.1),
              "the cache is used again after Redis returns")
        check(wait_until(lambda: redis.command("GET", "sess:" + sid2) == b"-", 5, 0.1),
              "the revocation made during the outage reached the cache")
        problem(c2.get("/api/v2/me"), 401, "auth.session_revoked")
    finally:
        st.cleanup()
        redis.cleanup()


# ------------------------------------------------------------- admin command

@test
def admin_command(s, binary):
    st = _stack(binary, name="admincli")
    try:
        cfg = st.config_path
        rc, out, err = admin(binary, cfg, "create-tenant", "acme")
        check(rc == 0 and json.loads(out)["name"] == "acme", "create-tenant: %d %s" % (rc, err))
        rc, out, err = admin(binary, cfg, "create-tenant", "acme")
        check(rc == 73 and "already exists" in err, "duplicate tenant: %d %s" % (rc, err))
        rc, out, err = admin(binary, cfg, "create-user", "--tenant", "acme", "--username", "ana",
                             "--role", "admin", stdin=PASSWORD + "\n")
        check(rc == 0 and json.loads(out)["role"] == "admin", "create-user: %d %s" % (rc, err))
        check(PASSWORD not in out + err, "password not echoed")
        for args, stdin, want in (
                (("--tenant", "acme", "--username", "ana", "--role", "admin"), PASSWORD, 73),
                (("--tenant", "nope", "--username", "bo", "--role", "admin"), PASSWORD, 65),
                (("--tenant", "acme", "--username", "bo", "--role", "root"), PASSWORD, 65),
                (("--tenant", "acme", "--username", "bo", "--role", "viewer"), "short", 65),
                (("--tenant", "acme", "--username", "b o", "--role", "viewer"), PASSWORD, 65),
                (("--tenant", "acme", "--role", "viewer"), PASSWORD, 64)):
            rc, out, err = admin(binary, cfg, "create-user", *args, stdin=stdin + "\n")
            check(rc == want, "create-user %r: %d, want %d (%s)" % (args, rc, want, err))
        rc, out, err = admin(binary, cfg, "list-users", "--tenant", "acme")
        users = [json.loads(l) for l in out.splitlines()]
        check(rc == 0 and [u["username"] for u in users] == ["ana"], "list-users %r" % users)
        check(admin(binary, cfg, "frobnicate")[0] == 64, "unknown command")
        c = Client(st.port, "acme", "ana")
        check(c.get("/api/v2/users").status == 200, "a user made by the admin command logs in")
    finally:
        st.cleanup()


@test
def admin_changes_a_role_or_deletes_a_user_and_their_sessions_end(s):
    tenant = new_tenant(s, (("boss", "admin"), ("ana", "viewer"), ("bob", "operator")))
    boss, ana, bob = (Client(s.port, tenant, u) for u in ("boss", "ana", "bob"))
    ana_id, bob_id, boss_id = (claims_of(c.token)["sub"] for c in (ana, bob, boss))

    def patch(c, uid, body):
        h = c.headers()
        h["Content-Type"] = "application/json"
        return request(s.port, "PATCH", "/api/v2/users/" + uid, h, json.dumps(body).encode())

    problem(patch(bob, ana_id, {"role": "admin"}), 403, "auth.forbidden")
    problem(patch(boss, ana_id, {"role": "owner"}), 400, "request.invalid_field")
    problem(patch(boss, ana_id, {"role": "operator", "username": "x"}), 400, "request.invalid_field")
    problem(patch(boss, boss_id, {"role": "viewer"}), 409, "resource.conflict")
    problem(boss.delete("/api/v2/users/" + boss_id), 409, "resource.conflict")
    # cached profiles (prof:...) before the change: both must show it at once after
    check(boss.get("/api/v2/users/" + ana_id).json()["role"] == "viewer", "profile before")
    check(ana.get("/api/v2/me").json()["user"]["role"] == "viewer", "me before")
    check(boss.get("/api/v2/users/" + bob_id).status == 200, "bob's profile cached")
    ttl = common.REDIS.command("PTTL", "prof:%s:%s" % (claims_of(ana.token)["tid"], ana_id))
    check(60000 * 0.9 - 1000 <= ttl <= 60000 * 1.1, "profile TTL %r within 60 s ± 10%%" % ttl)
    r = patch(boss, ana_id, {"role": "operator"})
    check(r.status == 200 and r.json()["role"] == "operator", "role change %d %r" % (r.status, r.body))
    # the token issued with the old role is dead in every process; a new login has the new role
    problem(ana.get("/api/v2/me"), 401, "auth.session_revoked")
    ana2 = Client(s.port, tenant, "ana")
    check(claims_of(ana2.token)["roles"] == ["operator"], "new token's role %r" % claims_of(ana2.token))
    check(boss.get("/api/v2/users/" + ana_id).json()["role"] == "operator", "profile after the change")
    check(ana2.get("/api/v2/me").json()["user"]["role"] == "operator", "me after the change")
    check(ana2.post("/api/v2/devices", {"name": "by ana"}).status == 201, "the new role applies")
    # deletion: sessions end, the login is refused like any wrong one, the id is gone
    r = boss.delete("/api/v2/users/" + bob_id)
    check(r.status == 204, "delete %d %r" % (r.status, r.body))
    problem(bob.get("/api/v2/me"), 401, "auth.session_revoked")
    r = post_json(s.port, "/api/v2/auth/login", {"tenant": tenant, "username": "bob", "password": PASSWORD})
    problem(r, 401, "auth.invalid_credentials")
    problem(boss.get("/api/v2/users/" + bob_id), 404, "resource.not_found")
    problem(boss.delete("/api/v2/users/" + bob_id), 404, "resource.not_found")
    # another tenant's admin sees none of it
    other = Client(s.port, new_tenant(s, (("root", "admin"),)), "root")
    problem(patch(other, ana_id, {"role": "viewer"}), 404, "resource.not_found")
    problem(other.delete("/api/v2/users/" + ana_id), 404, "resource.not_found")
    actions = [(i["action"], i["target"]) for i in boss.get("/api/v2/audit?limit=20").json()["items"]]
    check(("user.role", ana_id) in actions and ("user.delete", bob_id) in actions, "audit %r" % actions)
