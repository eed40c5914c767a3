package kube

import (
	"context"
	"errors"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/metalk8s/metalk8s/pkg/ssh"
)

// Transient reports whether err from the API may go away on a retry: an
// answer saying the server is overloaded or timed out (HTTP 429, 500,
// 503, 504 and the apiserver's own request timeouts, as an apiserver
// settling after a join gives: "Timeout: request did not complete within
// requested timeout"), a request that timed out on the way, or
// ssh.Transient's dropped connections. Refusals (403, 404, 409, 422) are
// not. For steps.Retry.If.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	return Overloaded(err) || errors.Is(err, context.DeadlineExceeded) || ssh.Transient(err)
}

// Overloaded reports whether err holds the API server's own answer that
// it is overloaded or timed out (HTTP 429, 500, 503, 504 and its request
// timeouts), anywhere in its chain: Transient without the timeouts and
// dropped connections of the client's side.
func Overloaded(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
}
