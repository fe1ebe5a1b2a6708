package hubapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// Handler returns the fake hub's HTTP API. Every request needs an admin token added
// with AddToken (401 without one, 401 for an unknown one); writes honour If-Match.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/clusters", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, h.ClusterList())
	})
	mux.HandleFunc("POST /api/v1/clusters", h.serveRegister)
	mux.HandleFunc("GET /api/v1/clusters/{cluster}", func(w http.ResponseWriter, r *http.Request) {
		st, err := h.ClusterStatus(r.Context(), r.PathValue("cluster"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st.Cluster)
	})
	mux.HandleFunc("DELETE /api/v1/clusters/{cluster}", h.serveDelete)
	mux.HandleFunc("POST /api/v1/clusters/{cluster}/token", h.serveRotate)
	mux.HandleFunc("GET /api/v1/clusters/{cluster}/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := h.ClusterStatus(r.Context(), r.PathValue("cluster"))
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("ETag", `"`+st.Revision+`"`)
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/v1/matrix", func(w http.ResponseWriter, r *http.Request) {
		m, _ := h.Matrix(r.Context())
		w.Header().Set("ETag", `"`+m.Revision+`"`)
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("PUT /api/v1/clusters/{cluster}/apps/{app}", h.serveSet)
	mux.HandleFunc("DELETE /api/v1/clusters/{cluster}/apps/{app}", func(w http.ResponseWriter, r *http.Request) {
		h.serveWrite(w, r, func(author string) (any, error) {
			return h.unset(r.PathValue("cluster"), r.PathValue("app"), author)
		})
	})
	mux.HandleFunc("POST /api/v1/clusters/{cluster}/apps/{app}/rollback", func(w http.ResponseWriter, r *http.Request) {
		h.serveWrite(w, r, func(author string) (any, error) {
			return h.rollback(r.PathValue("cluster"), r.PathValue("app"), author)
		})
	})
	mux.HandleFunc("POST /api/v1/apps/{app}/bulk", h.serveBulk)
	mux.HandleFunc("GET /api/v1/clusters/{cluster}/history", func(w http.ResponseWriter, r *http.Request) {
		limit, err := limitParam(r)
		if err != nil {
			writeError(w, err)
			return
		}
		hl, err := h.History(r.PathValue("cluster"), r.URL.Query().Get("app"), limit)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, hl)
	})
	mux.HandleFunc("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		limit, err := limitParam(r)
		if err != nil {
			writeError(w, err)
			return
		}
		el, _ := h.Events(r.Context(), r.URL.Query().Get("cluster"), limit)
		writeJSON(w, http.StatusOK, el)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("", "no route %s %s", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, apiv1.MaxRequestBytes+1))
		r.Body = io.NopCloser(bytes.NewReader(body))
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		h.mu.Lock()
		author, known := h.tokens[token]
		h.requests = append(h.requests, Request{
			Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Author: author,
		})
		unavailable := h.unavailable
		h.mu.Unlock()
		switch {
		case unavailable:
			writeError(w, &apiv1.ErrorResponse{Code: apiv1.CodeUnavailable, Message: "the hub is shutting down"})
		case token == "" || !known:
			writeError(w, &apiv1.ErrorResponse{Code: apiv1.CodeUnauthorized, Message: "missing or unknown bearer token"})
		default:
			mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authorKey{}, author)))
		}
	})
}

type authorKey struct{}

func authorOf(r *http.Request) string {
	a, _ := r.Context().Value(authorKey{}).(string)
	return a
}

func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1000 {
		return 0, &apiv1.ErrorResponse{Code: apiv1.CodeBadRequest, Message: "limit must be 1 to 1000", Field: "limit"}
	}
	return n, nil
}

// checkIfMatch answers 409 when the request's If-Match is not the current revision.
// Called under mu.
func (h *Hub) checkIfMatch(r *http.Request) error {
	v := r.Header.Get("If-Match")
	if v == "" {
		return nil
	}
	rev := strings.Trim(v, `"`)
	if err := apiv1.ValidateRevision("If-Match", rev); err != nil {
		return &apiv1.ErrorResponse{Code: apiv1.CodeInvalid, Message: err.Error(), Field: "If-Match"}
	}
	if rev != h.revision {
		return &apiv1.ErrorResponse{
			Code: apiv1.CodeConflict, Field: "If-Match",
			Message: fmt.Sprintf("revision %s is not current (now %s)", rev, h.revision),
		}
	}
	return nil
}

// serveWrite runs a write under the lock after the If-Match check.
func (h *Hub) serveWrite(w http.ResponseWriter, r *http.Request, write func(author string) (any, error)) {
	h.mu.Lock()
	err := h.checkIfMatch(r)
	var out any
	if err == nil {
		out, err = write(authorOf(r))
	}
	h.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Hub) serveSet(w http.ResponseWriter, r *http.Request) {
	var req apiv1.SetVersionRequest
	if err := apiv1.Decode(r.Body, apiv1.MaxRequestBytes, &req); err != nil {
		writeError(w, decodeErr(err))
		return
	}
	h.serveWrite(w, r, func(author string) (any, error) {
		return h.set(r.PathValue("cluster"), r.PathValue("app"), req.Version, author, "")
	})
}

func (h *Hub) serveRegister(w http.ResponseWriter, r *http.Request) {
	var req apiv1.RegisterClusterRequest
	if err := apiv1.Decode(r.Body, apiv1.MaxRequestBytes, &req); err != nil {
		writeError(w, decodeErr(err))
		return
	}
	h.mu.Lock()
	err := h.checkIfMatch(r)
	var resp apiv1.RegisterClusterResponse
	if err == nil {
		resp, err = h.register(req.Name, req.Labels, authorOf(r))
	}
	h.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (h *Hub) serveRotate(w http.ResponseWriter, r *http.Request) {
	var req apiv1.RotateTokenRequest
	if r.ContentLength != 0 {
		if err := apiv1.Decode(r.Body, apiv1.MaxRequestBytes, &req); err != nil {
			writeError(w, decodeErr(err))
			return
		}
	}
	name := r.PathValue("cluster")
	h.mu.Lock()
	c, err := h.cluster(name)
	var resp apiv1.RotateTokenResponse
	if err == nil {
		h.rotations++
		// A fixed token pattern keeps golden files stable; rotation makes no commit.
		c.token = fmt.Sprintf("opa_FAKE%s-r%d", name, h.rotations)
		resp = apiv1.RotateTokenResponse{Cluster: name, Token: c.token}
		if req.GraceSeconds > 0 {
			until := h.now().UTC().Add(time.Duration(req.GraceSeconds) * time.Second)
			resp.PreviousValidUntil = &until
		}
	}
	h.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Hub) serveDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("cluster")
	h.mu.Lock()
	err := h.checkIfMatch(r)
	if err == nil {
		_, err = h.cluster(name)
	}
	if err == nil {
		delete(h.clusters, name)
		h.revision = h.nextRevision()
	}
	h.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeErr turns an apiv1.Decode error into its ErrorResponse.
func decodeErr(err error) error {
	if resp, ok := apiv1.ErrorResponseFor(err); ok {
		return &resp
	}
	return &apiv1.ErrorResponse{Code: apiv1.CodeBadRequest, Message: err.Error()}
}
