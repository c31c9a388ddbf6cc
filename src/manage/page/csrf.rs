//! Cross-site request forgery defence for the settings page's forms: a browser that posts
//! a form must say it comes from this origin (`Sec-Fetch-Site`, else `Origin`), and must
//! carry a token that only a page this router rendered for the same person holds.
//!
//! The token is an HMAC, under a key of this router, of a random nonce kept in a
//! `SameSite=Strict`, `HttpOnly` cookie and of the acting user. Another site can neither
//! read the token from the page nor forge one for a nonce it planted in a cookie (say,
//! from a sibling subdomain), since it lacks the key; and a token minted for one person
//! is worthless in another person's session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use http::header::{COOKIE, HOST, ORIGIN};
use rand::SeedableRng;
use rand::rngs::{StdRng, SysRng};
use sha2::Sha256;

/// The cookie holding the nonce.
pub(super) const COOKIE_NAME: &str = "keygate_csrf";

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

    /// The token of `nonce` for `user`.
    pub(super) fn token(&self, nonce: &str, user: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(nonce, user).finalize().into_bytes())
    }

    fn mac(&self, nonce: &str, user: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(b"keygate settings form\0");
        mac.update(nonce.as_bytes());
        mac.update(b"\0");
        mac.update(user.as_bytes());
        mac
    }

    /// Whether `token` is the one of `nonce` for `user`, compared in constant time.
    fn verifies(&self, nonce: &str, user: &str, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        self.mac(nonce, user).verify_slice(&tag).is_ok()
    }

    /// Checks a form post of `user` with `headers` and the submitted `token`.
    pub(super) fn check(
        &self,
        headers: &HeaderMap,
        user: &str,
        token: Option<&str>,
    ) -> Result<(), Refusal> {
        if !same_origin(headers) {
            return Err(Refusal::CrossOrigin);
        }
        match (nonce_of(headers), token) {
            (Some(nonce), Some(token)) if self.verifies(nonce, user, token) => Ok(()),
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

/// Whether the browser says the request comes from this very origin. `Sec-Fetch-Site`
/// when the browser sends it (every current one does); else `Origin` against `Host`.
/// A request carrying neither (not a browser) is judged by its token alone.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
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

    #[test]
    fn token_of_the_same_nonce_and_user_passes() {
        let key = CsrfKey::random().unwrap();
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        let map = headers(&[("cookie", &cookie), ("sec-fetch-site", "same-origin")]);
        assert_eq!(
            key.check(&map, "alice", Some(&key.token(&nonce, "alice"))),
            Ok(())
        );
    }

    #[test]
    fn token_minted_for_another_user_is_refused() {
        let key = CsrfKey::random().unwrap();
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        let map = headers(&[("cookie", &cookie)]);
        assert_eq!(
            key.check(&map, "alice", Some(&key.token(&nonce, "mallory"))),
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
            key.check(&map, "alice", Some(&other.token(&nonce, "alice"))),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn post_without_the_cookie_is_refused() {
        let key = CsrfKey::random().unwrap();
        let token = key.token(&nonce(), "alice");
        assert_eq!(
            key.check(&HeaderMap::new(), "alice", Some(&token)),
            Err(Refusal::BadToken)
        );
    }

    #[test]
    fn cross_site_fetch_metadata_is_refused_even_with_a_valid_token() {
        let key = CsrfKey::random().unwrap();
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        let token = key.token(&nonce, "alice");
        for site in ["cross-site", "same-site", "none"] {
            let map = headers(&[("cookie", &cookie), ("sec-fetch-site", site)]);
            assert_eq!(
                key.check(&map, "alice", Some(&token)),
                Err(Refusal::CrossOrigin),
                "{site}"
            );
        }
    }

    #[test]
    fn foreign_or_null_origin_is_refused() {
        let key = CsrfKey::random().unwrap();
        let nonce = nonce();
        let cookie = format!("{COOKIE_NAME}={nonce}");
        let token = key.token(&nonce, "alice");
        for origin in ["https://evil.example", "null", "http://app.example.evil"] {
            let map = headers(&[
                ("cookie", &cookie),
                ("origin", origin),
                ("host", "app.example"),
            ]);
            assert_eq!(
                key.check(&map, "alice", Some(&token)),
                Err(Refusal::CrossOrigin),
                "{origin}"
            );
        }
        let map = headers(&[
            ("cookie", &cookie),
            ("origin", "https://app.example"),
            ("host", "app.example"),
        ]);
        assert_eq!(key.check(&map, "alice", Some(&token)), Ok(()));
    }

    #[test]
    fn malformed_cookie_nonce_is_ignored() {
        let map = headers(&[("cookie", "keygate_csrf=short; other=1")]);
        assert_eq!(nonce_of(&map), None);
    }
}
