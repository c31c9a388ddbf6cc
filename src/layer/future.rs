//! [`ResponseFuture`]: the response future of [`ApiKeyService`](crate::ApiKeyService).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::key::hash::KeyHash;
use crate::key::id::KeyId;
use crate::layer::decide::{Admission, LookupFuture, PendingKey};
use crate::layer::shared::Shared;
use crate::layer::verify::Verified;
use crate::policy::limit::{LimitError, LimitFuture};
use crate::store::error::StoreError;

/// What a request waiting on its lookup carries into the future.
pub(crate) struct Pending<S, B> {
    pub(crate) inner: S,
    pub(crate) request: Request<B>,
    pub(crate) id: KeyId,
    pub(crate) hash: KeyHash,
    pub(crate) shared: Arc<Shared>,
}

/// A verified request waiting for its limiter's verdict.
pub(crate) struct Limiting<S, B> {
    pub(crate) inner: S,
    pub(crate) request: Request<B>,
    pub(crate) key: PendingKey,
    pub(crate) verified: Verified,
    pub(crate) shared: Arc<Shared>,
}

pin_project! {
    /// The response future of [`ApiKeyService`](crate::ApiKeyService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Lookup {
            lookup: LookupFuture,
            pending: Option<Pending<S, B>>,
        },
        Limiting {
            limit: LimitFuture,
            pending: Option<Limiting<S, B>>,
        },
        Inner {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn limiting(limit: LimitFuture, pending: Limiting<S, B>) -> Self {
        Self {
            state: State::Limiting {
                limit,
                pending: Some(pending),
            },
        }
    }

    pub(crate) fn lookup(lookup: LookupFuture, pending: Pending<S, B>) -> Self {
        Self {
            state: State::Lookup {
                lookup,
                pending: Some(pending),
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, pending } => {
                    // A panicking store fails this request closed, like a store error,
                    // and leaves the service able to serve the next one.
                    let found = match catch_unwind(AssertUnwindSafe(|| lookup.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(found)) => found,
                        Err(_panic) => Err(StoreError::backend("the key store panicked")),
                    };
                    let Pending {
                        mut inner,
                        mut request,
                        id,
                        hash,
                        shared,
                    } = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    let key = PendingKey::new(id, hash);
                    match shared.admit(found, &key, &mut request) {
                        Admission::Allowed => {
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                        Admission::Denied(response) => {
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response.map(ResBody::from)));
                        }
                        Admission::Limiting(limit, verified) => {
                            let pending = Limiting {
                                inner,
                                request,
                                key,
                                verified,
                                shared,
                            };
                            this.state.set(State::Limiting {
                                limit,
                                pending: Some(pending),
                            });
                        }
                    }
                }
                StateProj::Limiting { limit, pending } => {
                    // A panicking limiter fails this request closed, like a store.
                    let verdict = match catch_unwind(AssertUnwindSafe(|| limit.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(verdict)) => verdict,
                        Err(_panic) => Err(LimitError::new("the rate limiter panicked")),
                    };
                    let Limiting {
                        mut inner,
                        mut request,
                        key,
                        verified,
                        shared,
                    } = pending
                        .take()
                        .expect("ResponseFuture polled after completion");
                    match shared.limited(verified, verdict, &key, &mut request) {
                        Admission::Denied(response) => {
                            this.state.set(State::Rejected { response: None });
                            return Poll::Ready(Ok(response.map(ResBody::from)));
                        }
                        // `limited` never asks the limiter again.
                        Admission::Allowed | Admission::Limiting(..) => {
                            let future = inner.call(request);
                            this.state.set(State::Inner { future });
                        }
                    }
                }
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Rejected { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResBody::from)));
                }
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
