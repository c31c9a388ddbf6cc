//! The settings page's form bodies: `application/x-www-form-urlencoded`, read strictly.
//! A field the form does not have, or a single field sent twice, is refused rather than
//! guessed at.

use http::HeaderMap;
use http::header::CONTENT_TYPE;

/// A posted form.
#[derive(Debug, Default)]
pub(super) struct Form {
    /// The CSRF token.
    pub(super) csrf: Option<String>,
    /// The new key's name.
    pub(super) name: Option<String>,
    /// Seconds until the new key expires; empty for never.
    pub(super) expires_in: Option<String>,
    /// The space to bind the new key to; empty for none.
    pub(super) space: Option<String>,
    /// The scopes ticked.
    pub(super) scopes: Vec<String>,
}

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FormError {
    /// Not a urlencoded form.
    NotAForm,
    /// A field this form does not have, or a single field twice.
    Field(String),
}

impl Form {
    /// The form of `body`, sent with `headers`.
    pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, FormError> {
        let is_form = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(FormError::NotAForm);
        }
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "csrf" => &mut form.csrf,
                "name" => &mut form.name,
                "expires_in" => &mut form.expires_in,
                "space" => &mut form.space,
                "scope" => {
                    form.scopes.push(value.into_owned());
                    continue;
                }
                other => return Err(FormError::Field(truncated(other))),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(FormError::Field(truncated(&name)));
            }
        }
        Ok(form)
    }
}

/// A field name fit to quote back: a hostile form may send a megabyte of one.
fn truncated(name: &str) -> String {
    name.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn form_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        headers
    }

    #[test]
    fn fields_and_repeated_scopes_are_read() {
        let form = Form::parse(
            &form_headers(),
            b"csrf=t&name=ci+key&expires_in=&scope=a&scope=b%3Ac",
        )
        .unwrap();
        assert_eq!(form.name.as_deref(), Some("ci key"));
        assert_eq!(form.expires_in.as_deref(), Some(""));
        assert_eq!(form.scopes, ["a", "b:c"]);
    }

    #[test]
    fn unknown_field_is_refused() {
        let result = Form::parse(&form_headers(), b"name=a&user=bob");
        assert_eq!(result.unwrap_err(), FormError::Field("user".into()));
    }

    #[test]
    fn single_field_sent_twice_is_refused() {
        let result = Form::parse(&form_headers(), b"name=a&name=b");
        assert_eq!(result.unwrap_err(), FormError::Field("name".into()));
    }

    #[test]
    fn body_that_is_not_a_form_is_refused() {
        let result = Form::parse(&HeaderMap::new(), b"name=a");
        assert_eq!(result.unwrap_err(), FormError::NotAForm);
    }
}
