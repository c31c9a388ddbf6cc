//! [`Scopes`]: what a key may do, as RFC 6750 scope tokens.

use std::fmt;

/// A key's scopes: a sorted set of scope tokens such as `items:read`.
///
/// Scope tokens follow RFC 6750 (printable ASCII except space, `"` and `\`), so they can
/// be named in a `WWW-Authenticate` challenge as they are.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(pub(crate) Vec<Box<str>>);

impl Scopes {
    /// Builds a set from scope tokens; duplicates are dropped.
    ///
    /// # Errors
    ///
    /// [`InvalidScope`] naming the first token that is empty, longer than 128 bytes, or
    /// holds a character RFC 6750 does not allow.
    pub fn new<I, T>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut tokens = Vec::new();
        for scope in scopes {
            let scope = scope.as_ref();
            if !is_scope_token(scope) {
                return Err(InvalidScope(scope.chars().take(128).collect()));
            }
            tokens.push(Box::<str>::from(scope));
        }
        tokens.sort_unstable();
        tokens.dedup();
        tokens.shrink_to_fit();
        Ok(Self(tokens))
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| (**s).cmp(scope)).is_ok()
    }

    /// Whether every scope of `other` is in this set.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.iter().all(|scope| self.contains(scope))
    }

    /// The scopes in sorted order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| &**s)
    }

    /// How many scopes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

fn is_scope_token(scope: &str) -> bool {
    // RFC 6750 §3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    (1..=128).contains(&scope.len())
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A scope token was empty, too long, or held a character RFC 6750 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid scope {0:?}: scopes are 1 to 128 printable ASCII characters without space, `\"` or `\\`"
)]
pub struct InvalidScope(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_sorted_and_deduplicated() {
        let scopes = Scopes::new(["b", "a", "b"]).unwrap();
        assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn scope_with_space_or_quote_is_rejected() {
        assert!(Scopes::new(["a b"]).is_err());
        assert!(Scopes::new(["a\"b"]).is_err());
        assert!(Scopes::new([""]).is_err());
    }

    #[test]
    fn contains_all_requires_every_scope() {
        let held = Scopes::new(["a", "b"]).unwrap();
        assert!(held.contains_all(&Scopes::new(["a"]).unwrap()));
        assert!(!held.contains_all(&Scopes::new(["a", "c"]).unwrap()));
    }
}
