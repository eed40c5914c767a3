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
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || ssh.Transient(err)
}
