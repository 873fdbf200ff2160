//! Login (with its brute-force guard), bearer tokens and their revocation,
//! the `Caller` extractor, and user administration.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::error::problem;
use super::views::ts;
use super::{ApiJson, AppState};
use crate::domain::types::{DepartmentCode, Role};
use crate::infra::login_guard::LoginGuard;
use crate::infra::ratelimit::retry_after_secs;
use crate::store::entities::user;
use crate::store::users::UserChanges;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub department: Option<String>,
}

impl Caller {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "role `{}` may not do this",
                self.role
            )))
        }
    }

    pub fn actor(&self) -> crate::domain::lifecycle::Actor {
        crate::domain::lifecycle::Actor {
            name: self.username.clone(),
            role: self.role,
            department: self.department.clone(),
        }
    }

    pub fn scope(&self) -> crate::store::tickets::Scope {
        use crate::store::tickets::Scope;
        match (&self.department, self.role.is_department_scoped()) {
            (Some(d), true) => Scope::Department(d.clone()),
            // A department role without a department sees nothing.
            (None, true) => Scope::Department(String::new()),
            _ => Scope::All,
        }
    }
}

/// A cached token: its user, its expiry, and when it was cached.
type CachedToken = (Caller, DateTime<Utc>, Instant);

/// This instance's memory of authentication. Token look-ups are cached
/// briefly so a busy agent does not cost a query a request (expiry is still
/// checked against the stored instant). A revocation (log-out, password
/// change, a user changed or disabled) drops the entries here at once and,
/// with Redis, is announced to every other instance, which drops them too;
/// without Redis, or while it is down, other instances forget within 30 s.
/// It also holds the log-in guard, built on first use from the settings.
#[derive(Default)]
pub struct TokenCache {
    shared: Arc<Entries>,
    guard: OnceLock<LoginGuard>,
}

/// The cached tokens and a count of revocations seen. A look-up that read
/// the database while a revocation arrived must not cache what it read (it
/// may predate the revocation): it notes the count before reading and
/// caches only if the count is unchanged.
#[derive(Default)]
struct Entries {
    map: Mutex<HashMap<String, CachedToken>>,
    revocations: AtomicU64,
}

const CACHE_FOR: Duration = Duration::from_secs(30);

/// The Redis channel on which instances announce revocations: `t:<token
/// hash>` or `u:<user id>`.
const REVOCATIONS: &str = "hotline:token-revocations";

/// What a revocation covers.
enum Revoked<'a> {
    Token(&'a str),
    User(i64),
}

impl Entries {
    /// Applies a revocation and counts it.
    fn drop_where(&self, revoked: Option<&Revoked>) {
        if let Ok(mut map) = self.map.lock() {
            match revoked {
                Some(Revoked::Token(hash)) => {
                    map.remove(*hash);
                }
                Some(Revoked::User(id)) => map.retain(|_, (c, _, _)| c.id != *id),
                None => map.clear(),
            }
            self.revocations.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A message from [`REVOCATIONS`]; anything unreadable empties the cache.
    fn apply(&self, message: &str) {
        match message.split_once(':') {
            Some(("t", hash)) => self.drop_where(Some(&Revoked::Token(hash))),
            Some(("u", id)) => match id.parse() {
                Ok(id) => self.drop_where(Some(&Revoked::User(id))),
                Err(_) => self.drop_where(None),
            },
            _ => self.drop_where(None),
        }
    }
}

impl TokenCache {
    /// Hears the other instances' revocations through Redis. Whenever the
    /// subscription is (re)made the whole cache is dropped: announcements
    /// made while it was down are lost.
    pub fn listen(&self, redis: &crate::infra::redis::RedisHandle) {
        let (on_subscribed, on_message) = (self.shared.clone(), self.shared.clone());
        redis.listen(
            REVOCATIONS,
            move || on_subscribed.drop_where(None),
            move |m| on_message.apply(&m),
        );
    }

    fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<Caller> {
        let map = self.shared.map.lock().ok()?;
        let (c, exp, at) = map.get(hash)?;
        (*exp > now && at.elapsed() < CACHE_FOR).then(|| c.clone())
    }

    /// The revocation count, to hand to [`TokenCache::put`].
    fn revocations(&self) -> u64 {
        self.shared.revocations.load(Ordering::SeqCst)
    }

    /// Caches a look-up made after `seen` was read, unless a revocation
    /// arrived since.
    fn put(&self, seen: u64, hash: String, c: Caller, exp: DateTime<Utc>) {
        if let Ok(mut map) = self.shared.map.lock() {
            if self.shared.revocations.load(Ordering::SeqCst) != seen {
                return;
            }
            if map.len() > 10_000 {
                map.retain(|_, (_, _, at)| at.elapsed() < CACHE_FOR);
            }
            map.insert(hash, (c, exp, Instant::now()));
        }
    }

    /// Drops a revocation's entries here and announces it to the other
    /// instances. Called after the database has it, so no instance can
    /// read the old state back into its cache.
    async fn revoked(&self, redis: Option<&crate::infra::redis::RedisHandle>, what: Revoked<'_>) {
        self.shared.drop_where(Some(&what));
        if let Some(r) = redis {
            let message = match what {
                Revoked::Token(hash) => format!("t:{hash}"),
                Revoked::User(id) => format!("u:{id}"),
            };
            if let Err(e) = r.publish(REVOCATIONS, &message).await {
                tracing::warn!(error = %e, "revocation not announced (Redis unavailable): other instances forget the token within 30 s");
            }
        }
    }
}

fn login_guard(state: &AppState) -> &LoginGuard {
    state
        .tokens
        .guard
        .get_or_init(|| LoginGuard::new(&state.settings.auth, state.redis.clone()))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn user_json(u: &user::Model) -> serde_json::Value {
    json!({
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "department": u.department,
        "email": u.email,
        "display_name": u.display_name,
        "active": u.active,
        "created_at": ts(u.created_at),
    })
}

fn caller_of(u: &user::Model) -> Result<Caller, ApiError> {
    Ok(Caller {
        id: u.id,
        username: u.username.clone(),
        role: u
            .role
            .parse()
            .map_err(|_| ApiError::internal(format!("user {} has a bad role", u.id)))?,
        department: u.department.clone(),
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("no app state"))?;
            let token = token?;
            caller_for_token(&state, &token).await
        })
    }
}

/// The bearer token of a request: the `Authorization` header, or — for
/// the live stream only, since browsers' EventSource cannot send headers —
/// `?access_token=`.
fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let mut header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    if header.is_none() && req.path().ends_with("/events/stream") {
        header = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("access_token="))
            .map(|t| format!("Bearer {t}"));
    }
    header
        .as_deref()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::unauthorized("an `Authorization: Bearer <token>` header is required")
        })
}

/// The user behind a bearer token (header or the pages' session cookie).
pub async fn caller_for_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let hash = hash_token(token);
    let now = crate::store::now();
    if let Some(c) = state.tokens.get(&hash, now) {
        return Ok(c);
    }
    let seen = state.tokens.revocations();
    let (u, exp) = state
        .store
        .token_user(&hash, now)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is invalid or has expired"))?;
    let c = caller_of(&u)?;
    state.tokens.put(seen, hash, c.clone(), exp);
    Ok(c)
}

/// Ends a token's life (log-out): revoked in the database, then dropped from
/// every instance's cache.
pub async fn revoke_token(state: &AppState, token: &str) -> Result<(), ApiError> {
    let hash = hash_token(token);
    state.store.revoke_token(&hash, crate::store::now()).await?;
    state
        .tokens
        .revoked(state.redis.as_ref(), Revoked::Token(&hash))
        .await;
    Ok(())
}

#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.username.trim().is_empty() || body.password.is_empty() {
        return Err(ApiError::validation(
            "`username` and `password` are required",
        ));
    }
    let user = match log_in(&state, &req, &body.username, body.password).await {
        Ok(u) => u,
        Err(LoginError::Limited(secs)) => return Ok(rate_limited(secs)),
        Err(LoginError::Refused(e)) => return Err(e),
    };
    let (token, expires_at) = issue_token(&state, user.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "expires_at": ts(expires_at),
        "user": user_json(&user),
    })))
}

/// Why a log-in did not succeed.
#[derive(Debug)]
pub enum LoginError {
    /// Too many failures for this user name or client address: retry after
    /// this many seconds. The password was not checked.
    Limited(u64),
    /// Wrong user name or password (`unauthorized`), or a failure.
    Refused(ApiError),
}

/// 429 `rate_limited` problem+json with `Retry-After`.
pub fn rate_limited(secs: u64) -> HttpResponse {
    let mut resp = problem(
        "rate_limited",
        &format!("too many failed log-ins; retry in {secs} s"),
        &[],
    );
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    resp
}

/// The client address a request counts against (the TCP peer unless
/// `auth.client_ip_header` names a trusted proxy's header).
pub fn client_address(state: &AppState, req: &HttpRequest) -> String {
    super::mailbox::client_address(req, &state.settings.auth.client_ip_header)
}

/// Checks a log-in through the brute-force guard: refused unchecked when
/// the user name or the client address has used up its failures; a right
/// password clears the user's count.
pub async fn log_in(
    state: &AppState,
    req: &HttpRequest,
    username: &str,
    password: String,
) -> Result<user::Model, LoginError> {
    let guard = login_guard(state);
    let address = client_address(state, req);
    let attempt = guard.begin(username, &address).await.map_err(|wait| {
        // No user name in the log: people type passwords into that field.
        tracing::warn!("log-in refused unchecked: too many failures for the user or address");
        LoginError::Limited(retry_after_secs(wait))
    })?;
    match check_password(state, username, password).await {
        Ok(u) => {
            guard.succeeded(attempt).await;
            Ok(u)
        }
        Err(e) if e.code == "unauthorized" => {
            tracing::info!("log-in failed: wrong user name or password");
            Err(LoginError::Refused(e))
        }
        Err(e) => {
            // Our failure, not a guess: the attempt is not counted.
            guard.cancel(attempt).await;
            Err(LoginError::Refused(e))
        }
    }
}

/// The active user with this name and password, or `unauthorized`.
async fn check_password(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<user::Model, ApiError> {
    let user = state.store.user_by_name(username.trim()).await?;
    let hash = user
        .as_ref()
        .filter(|u| u.active)
        .map(|u| u.password_hash.clone());
    // Hash even for unknown users so timing does not reveal which exist.
    let ok = web::block(move || match hash {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = hash_password(&password);
            false
        }
    })
    .await
    .map_err(ApiError::internal)?;
    match (ok, user) {
        (true, Some(u)) => Ok(u),
        _ => Err(ApiError::unauthorized("wrong username or password")),
    }
}

pub async fn issue_token(
    state: &AppState,
    user_id: i64,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let now = crate::store::now();
    let expires_at = now + chrono::Duration::hours(state.settings.auth.token_ttl_hours);
    state
        .store
        .create_token(user_id, &hash_token(&token), now, expires_at)
        .await?;
    Ok((token, expires_at))
}

pub async fn me(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let u = state
        .store
        .user_by_name(&caller.username)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(user_json(&u)))
}

#[derive(Deserialize)]
pub struct NewUserBody {
    pub username: String,
    pub password: String,
    pub role: Role,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

pub fn valid_username(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub async fn create_user(
    caller: Caller,
    state: web::Data<AppState>,
    body: ApiJson<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let b = body.into_inner();
    let mut errors = Vec::new();
    if !valid_username(&b.username) {
        errors.push("`username` must be 1–64 letters, digits, `_`, `-` or `.`".to_owned());
    }
    if b.password.chars().count() < 8 || b.password.len() > 256 {
        errors.push("`password` must be 8–256 characters".to_owned());
    }
    let department = b
        .department
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if b.role.is_department_scoped() && department.is_none() {
        errors.push(format!("`department` is required for role `{}`", b.role));
    }
    if let Some(d) = department
        && let Err(e) = DepartmentCode::parse(d)
    {
        errors.push(format!("`department`: {e}"));
    }
    if let Some(e) = b.email.as_deref().filter(|e| !e.is_empty())
        && (!e.contains('@') || e.len() > 254)
    {
        errors.push("`email` is not an e-mail address".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    if let Some(d) = department
        && state.store.department(d).await?.is_none()
    {
        return Err(ApiError::validation(format!("unknown department `{d}`")));
    }
    let password = b.password.clone();
    let hash = web::block(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    let u = state
        .store
        .create_user(
            &b.username,
            &hash,
            b.role.as_str(),
            department,
            b.email.as_deref().filter(|e| !e.is_empty()),
            b.display_name.as_deref(),
            crate::store::now(),
        )
        .await?;
    Ok(HttpResponse::Created().json(user_json(&u)))
}

pub async fn list_users(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let users: Vec<_> = state
        .store
        .list_users()
        .await?
        .iter()
        .map(user_json)
        .collect();
    let total = users.len();
    Ok(HttpResponse::Ok()
        .json(json!({"items": users, "total": total, "page": 1, "per_page": total})))
}

/// `POST /api/v1/auth/logout`: revokes the caller's bearer token → 204.
pub async fn logout(
    req: HttpRequest,
    _caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = bearer_token(&req)?;
    revoke_token(&state, &token).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn password_error(field: &str, p: &str) -> Option<String> {
    (p.chars().count() < 8 || p.len() > 256).then(|| format!("`{field}` must be 8–256 characters"))
}

async fn hash_off_thread(password: String) -> Result<String, ApiError> {
    web::block(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
}

#[derive(Deserialize)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/auth/password`: the caller changes their own password,
/// proving the current one (through the log-in guard, so a stolen token
/// cannot test guesses); every token of theirs is revoked → 204.
pub async fn change_password(
    req: HttpRequest,
    caller: Caller,
    state: web::Data<AppState>,
    body: ApiJson<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    if let Some(e) = password_error("new_password", &b.new_password) {
        return Err(ApiError::validation(e));
    }
    match log_in(&state, &req, &caller.username, b.current_password).await {
        Ok(u) if u.id == caller.id => {}
        Ok(_) => return Err(ApiError::unauthorized("the token's user has changed")),
        Err(LoginError::Limited(secs)) => return Ok(rate_limited(secs)),
        Err(LoginError::Refused(e)) if e.code == "unauthorized" => {
            return Err(ApiError::validation("`current_password` is wrong"));
        }
        Err(LoginError::Refused(e)) => return Err(e),
    }
    let changes = UserChanges {
        password_hash: Some(hash_off_thread(b.new_password).await?),
        ..Default::default()
    };
    state
        .store
        .update_user(caller.id, &changes, true, crate::store::now())
        .await?
        .ok_or_else(ApiError::not_found)?;
    state
        .tokens
        .revoked(state.redis.as_ref(), Revoked::User(caller.id))
        .await;
    tracing::info!(user = %caller.username, "password changed; every token revoked");
    Ok(HttpResponse::NoContent().finish())
}

/// A field that may be absent (unchanged), `null` or `""` (cleared), or set.
fn clearable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    let v: Option<String> = Option::deserialize(d)?;
    Ok(Some(
        v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default, deserialize_with = "clearable")]
    pub department: Option<Option<String>>,
    #[serde(default, deserialize_with = "clearable")]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "clearable")]
    pub email: Option<Option<String>>,
}

/// `PATCH /api/v1/users/{id}` (admin): changes a user. Disabling them or
/// setting their password revokes every token of theirs; any change takes
/// effect on this instance's next request → 200 with the user.
pub async fn update_user(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: ApiJson<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id: i64 = path.parse().map_err(|_| ApiError::not_found())?;
    let b = body.into_inner();
    let current = state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut errors = Vec::new();
    if id == caller.id && (b.active == Some(false) || b.role.is_some_and(|r| r != Role::Admin)) {
        // Someone must be left to manage users.
        errors.push("an admin cannot disable or demote their own account".to_owned());
    }
    if id == caller.id && b.password.is_some() {
        // A stolen token must not be enough to take the account over.
        errors.push(
            "change your own password with POST /api/v1/auth/password (it asks for the current one)"
                .to_owned(),
        );
    }
    if let Some(e) = b
        .password
        .as_deref()
        .and_then(|p| password_error("password", p))
    {
        errors.push(e);
    }
    let role = match b.role {
        Some(r) => r,
        None => current
            .role
            .parse()
            .map_err(|_| ApiError::internal(format!("user {id} has a bad role")))?,
    };
    let department = match &b.department {
        Some(d) => d.clone(),
        None => current.department.clone(),
    };
    if role.is_department_scoped() && department.is_none() {
        errors.push(format!("`department` is required for role `{role}`"));
    }
    if let Some(Some(d)) = &b.department
        && let Err(e) = DepartmentCode::parse(d)
    {
        errors.push(format!("`department`: {e}"));
    }
    if let Some(Some(e)) = &b.email
        && (!e.contains('@') || e.len() > 254)
    {
        errors.push("`email` is not an e-mail address".to_owned());
    }
    if let Some(Some(n)) = &b.display_name
        && n.chars().count() > 100
    {
        errors.push("`display_name` is longer than 100 characters".to_owned());
    }
    if !errors.is_empty() {
        return Err(ApiError::validation_many(errors));
    }
    if let Some(Some(d)) = &b.department
        && state.store.department(d).await?.is_none()
    {
        return Err(ApiError::validation(format!("unknown department `{d}`")));
    }
    let password_hash = match b.password {
        Some(p) => Some(hash_off_thread(p).await?),
        None => None,
    };
    let revoke = password_hash.is_some() || b.active == Some(false);
    let changes = UserChanges {
        password_hash,
        role: b.role.map(|r| r.as_str().to_owned()),
        department: b.department,
        email: b.email,
        display_name: b.display_name,
        active: b.active,
    };
    let u = state
        .store
        .update_user(id, &changes, revoke, crate::store::now())
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Role, department or state may have changed: no cached caller survives.
    state
        .tokens
        .revoked(state.redis.as_ref(), Revoked::User(id))
        .await;
    tracing::info!(user = %u.username, by = %caller.username, revoked = revoke, "user changed");
    Ok(HttpResponse::Ok().json(user_json(&u)))
}
