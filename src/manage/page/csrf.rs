//! Cross-site request forgery defence for the settings page's forms: a browser that posts
//! a form must say it comes from this origin (`Sec-Fetch-Site`, else `Origin`), and must
//! carry a token that only a page this router rendered for the same person holds.
//!
//! The token is an HMAC, under a key of this router, of a random nonce kept in a
//! `SameSite=Strict`, `HttpOnly` cookie, of the acting user and of the time it was
//! issued. Another site can neither read the token from the page nor forge one for a
//! nonce it planted in a cookie (say, from a sibling subdomain), since it lacks the key;
//! a token minted for one person is worthless in another person's session; and a token
//! expires [`TOKEN_LIFETIME`] after the page that carried it was rendered.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use http::header::{COOKIE, HOST, ORIGIN};
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cookie holding the nonce.
pub(super) const COOKIE_NAME: &str = "keygate_csrf";

/// How long a rendered form stays good to post.
pub(super) const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3_600);

/// Bytes of randomness in a nonce.
const NONCE_BYTES: usize = 32;

/// Why a form post was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The browser says the post comes from another site or origin.
    CrossOrigin,
    /// The token is missing, or not the one this person's page carried.
    BadToken,
}

/// The key tokens are made with; one per page router.
#[derive(Clone)]
pub(super) struct CsrfKey(Hmac<Sha256>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    /// A key of `secret` (share one between the instances of a fleet, so that a form
    /// rendered by one instance posts to another).
    pub(super) fn new(secret: &[u8]) -> Self {
        // HMAC takes a key of any length; this cannot fail.
        Self(Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!()))
    }

    /// A key of fresh randomness, or `None` when the system's randomness fails.
    pub(super) fn random() -> Option<Self> {
        random_bytes().map(|bytes| Self::new(&bytes))
    }

    /// The token of `nonce` for `user`, issued at `now`: `<unix seconds>.<tag>`.
    pub(super) fn token(&self, nonce: &str, user: &str, now: SystemTime) -> String {
        let issued = unix(now);
        let tag = self.mac(nonce, user, issued).finalize().into_bytes();
        format!("{issued}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn mac(&self, nonce: &str, user: &str, issued: u64) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(b"keygate settings form\0");
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(user.as_bytes());
        mac.update(b"\0");
        mac.update(&issued.to_be_bytes());
        mac
    }

    /// Whether `token` is one of `nonce` for `user`, compared in constant time, and
    /// still good at `now`.
    fn verifies(&self, nonce: &str, user: &str, token: &str, now: SystemTime) -> bool {
        let Some((issued, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(issued), Ok(tag)) = (issued.parse::<u64>(), URL_SAFE_NO_PAD.decode(tag)) else {
            return false;
        };
        // As `token` writes it, no other spelling (`+1`, `01`) of the same time.
        if !token.starts_with(&format!("{issued}.")) {
            return false;
        }
        let now = unix(now);
        // A minute of slack for clocks that differ between the instances of a fleet.
        let fresh = issued <= now.saturating_add(60)
            && now.saturating_sub(issued) <= TOKEN_LIFETIME.as_secs();
        self.mac(nonce, user, issued).verify_slice(&tag).is_ok() && fresh
    }

    /// Checks a form post of `user` with `headers` and the submitted `token` at `now`.
    pub(super) fn check(
        &self,
        headers: &HeaderMap,
        user: &str,
        token: Option<&str>,
        now: SystemTime,
    ) -> Result<(), Refusal> {
        if !is_same_origin(headers) {
            return Err(Refusal::CrossOrigin);
        }
        match (nonce_of(headers), token) {
            (Some(nonce), Some(token)) if self.verifies(nonce, user, token, now) => Ok(()),
            _ => Err(Refusal::BadToken),
        }
    }
}

/// A fresh nonce for the cookie, or `None` when the system's randomness fails.
pub(super) fn new_nonce() -> Option<String> {
    random_bytes().map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
}

fn random_bytes() -> Option<[u8; NONCE_BYTES]> {
    use rand::Rng;
    let mut rng = StdRng::try_from_rng(&mut SysRng).ok()?;
    let mut bytes = [0; NONCE_BYTES];
    rng.fill_bytes(&mut bytes);
    Some(bytes)
}

/// The nonce of the request's cookie, if it holds one of the right shape.
pub(super) fn nonce_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|value| {
            value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `Set-Cookie` value that keeps `nonce`: for this browser only, never sent by a
/// request another site starts, out of reach of scripts. `Secure` when the page is
/// served over TLS (`secure`), so that it is never sent in clear.
pub(super) fn set_cookie(nonce: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={nonce}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

fn unix(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Whether the browser says a request comes from this very origin: `Sec-Fetch-Site`, when
/// sent (every current browser does), must be `same-origin`, and `Origin`, when sent,
/// must name the `Host` the request went to (`null` never does). A request carrying
/// neither (not a browser) passes: the settings page judges it by its CSRF token alone.
///
/// The settings page checks every form post with it; use it for your own forms (a login
/// form, say) too.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("app.example"));
/// headers.insert("origin", HeaderValue::from_static("https://evil.example"));
/// assert!(!keygate::is_same_origin(&headers));
/// ```
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() != b"same-origin")
    {
        return false;
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) =
        (origin.to_str(), headers.get(HOST).map(|host| host.to_str()))
    else {
        return false;
    };
    origin.split_once("://").is_some_and(|(scheme, authority)| {
        matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn nonce() -> String {
        new_nonce().unwrap()
    }

    /// A router key, and a browser's nonce with the cookie header carrying it.
    fn browser() -> (CsrfKey, String, String) {
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        (CsrfKey::random().unwrap(), nonce, cookie)
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn token_expires_after_its_lifetime() {
        let (key, nonce, cookie) = browser();
        let map = headers(&[("cookie", &cookie)]);
        let token = key.token(&nonce, "alice", now());
        let later = now() + TOKEN_LIFETIME;
        assert_eq!(key.check(&map, "alice", Some(&token), later), Ok(()));
        assert_eq!(
            key.check(&map, "alice", Some(&token), later + Duration::from_secs(1)),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn token_with_a_forged_issue_time_is_refused() {
        let (key, nonce, cookie) = browser();
        let map = headers(&[("cookie", &cookie)]);
        let token = key.token(&nonce, "alice", now());
        let (_, tag) = token.split_once('.').unwrap();
        let moved = format!("{}.{tag}", 1_800_000_000u64 + 3_600);
        assert_eq!(
            key.check(&map, "alice", Some(&moved), now()),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn token_respelling_its_issue_time_is_refused() {
        let (key, nonce, cookie) = browser();
        let map = headers(&[("cookie", &cookie)]);
        let token = key.token(&nonce, "alice", now());
        for respelt in [format!("0{token}"), format!("+{token}")] {
            assert_eq!(
                key.check(&map, "alice", Some(&respelt), now()),
                Err(Refusal::BadToken),
                "{respelt}"
            );
        }
    }

    #[test]
    fn fetch_metadata_does_not_excuse_a_foreign_origin() {
        let map = headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://evil.example"),
            ("host", "app.example"),
        ]);
        assert!(!is_same_origin(&map));
    }

    #[test]
    fn token_of_the_same_nonce_and_user_passes() {
        let (key, nonce, cookie) = browser();
        let map = headers(&[("cookie", &cookie), ("sec-fetch-site", "same-origin")]);
        assert_eq!(
            key.check(
                &map,
                "alice",
                Some(&key.token(&nonce, "alice", now())),
                now()
            ),
            Ok(())
        );
    }

    #[test]
    fn token_minted_for_another_user_is_refused() {
        let (key, nonce, cookie) = browser();
        let map = headers(&[("cookie", &cookie)]);
        assert_eq!(
            key.check(
                &map,
                "alice",
                Some(&key.token(&nonce, "mallory", now())),
                now()
            ),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn token_of_another_router_key_is_refused() {
        let (key, other) = (CsrfKey::random().unwrap(), CsrfKey::random().unwrap());
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        let map = headers(&[("cookie", &cookie)]);
        assert_eq!(
            key.check(
                &map,
                "alice",
                Some(&other.token(&nonce, "alice", now())),
                now()
            ),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn post_without_the_cookie_is_refused() {
        let key = CsrfKey::random().unwrap();
        let token = key.token(&nonce(), "alice", now());
        assert_eq!(
            key.check(&HeaderMap::new(), "alice", Some(&token), now()),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn cross_site_fetch_metadata_is_refused_even_with_a_valid_token() {
        let (key, nonce, cookie) = browser();
        let token = key.token(&nonce, "alice", now());
        for site in ["cross-site", "same-site", "none"] {
            let map = headers(&[("cookie", &cookie), ("sec-fetch-site", site)]);
            assert_eq!(
                key.check(&map, "alice", Some(&token), now()),
                Err(Refusal::CrossOrigin),
                "{site}"
            );
        }
    }

    #[test]
    fn foreign_or_null_origin_is_refused() {
        let (key, nonce, cookie) = browser();
        let token = key.token(&nonce, "alice", now());
        for origin in ["https://evil.example", "null", "http://app.example.evil"] {
            let map = headers(&[
                ("cookie", &cookie),
                ("origin", origin),
                ("host", "app.example"),
            ]);
            assert_eq!(
                key.check(&map, "alice", Some(&token), now()),
                Err(Refusal::CrossOrigin),
                "{origin}"
            );
        }
        let map = headers(&[
            ("cookie", &cookie),
            ("origin", "https://app.example"),
            ("host", "app.example"),
        ]);
        assert_eq!(key.check(&map, "alice", Some(&token), now()), Ok(()));
    }

    #[test]
    fn malformed_cookie_nonce_is_ignored() {
        let map = headers(&[("cookie", "keygate_csrf=short; other=1")]);
        assert_eq!(nonce_of(&map), None);
    }
}
