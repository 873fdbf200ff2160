//! Login, bearer tokens, the `Caller` extractor, and user administration.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
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
use super::views::ts;
use super::{ApiJson, AppState};
use crate::domain::types::{DepartmentCode, Role};
use crate::store::entities::user;

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

/// Token look-ups cached briefly so a busy agent does not cost a query a
/// request. Expiry is still checked against the stored instant.
/// A cached token: its user, its expiry, and when it was cached.
type CachedToken = (Caller, DateTime<Utc>, Instant);

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, CachedToken>>,
}

const CACHE_FOR: Duration = Duration::from_secs(30);

impl TokenCache {
    fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<Caller> {
        let map = self.entries.lock().ok()?;
        let (c, exp, at) = map.get(hash)?;
        (*exp > now && at.elapsed() < CACHE_FOR).then(|| c.clone())
    }

    fn put(&self, hash: String, c: Caller, exp: DateTime<Utc>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, _, at)| at.elapsed() < CACHE_FOR);
            }
            map.insert(hash, (c, exp, Instant::now()));
        }
    }
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
        let mut header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        // Browsers' EventSource cannot send headers: the live stream also
        // takes `?access_token=`.
        if header.is_none() && req.path().ends_with("/events/stream") {
            header = req
                .query_string()
                .split('&')
                .find_map(|kv| kv.strip_prefix("access_token="))
                .map(|t| format!("Bearer {t}"));
        }
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("no app state"))?;
            let token = header
                .as_deref()
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized("an `Authorization: Bearer <token>` header is required")
                })?;
            caller_for_token(&state, token).await
        })
    }
}

/// The user behind a bearer token (header or the pages' session cookie).
pub async fn caller_for_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let hash = hash_token(token);
    let now = crate::store::now();
    if let Some(c) = state.tokens.get(&hash, now) {
        return Ok(c);
    }
    let (u, exp) = state
        .store
        .token_user(&hash, now)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is invalid or has expired"))?;
    let c = caller_of(&u)?;
    state.tokens.put(hash, c.clone(), exp);
    Ok(c)
}

/// Ends a token's life (log-out): revoked in the database and dropped from
/// this instance's cache (other instances' caches forget it within 30 s).
pub async fn revoke_token(state: &AppState, token: &str) -> Result<(), ApiError> {
    let hash = hash_token(token);
    if let Ok(mut map) = state.tokens.entries.lock() {
        map.remove(&hash);
    }
    state.store.revoke_token(&hash, crate::store::now()).await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

pub async fn login(
    state: web::Data<AppState>,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.username.trim().is_empty() || body.password.is_empty() {
        return Err(ApiError::validation(
            "`username` and `password` are required",
        ));
    }
    let user = check_password(&state, &body.username, body.password).await?;
    let (token, expires_at) = issue_token(&state, user.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "token": token,
        "expires_at": ts(expires_at),
        "user": user_json(&user),
    })))
}

/// The active user with this name and password, or `unauthorized`.
pub async fn check_password(
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
