package testenv

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServiceAccountToken returns a token for the ServiceAccount namespace/name, minted by
// the TokenRequest API (valid for one hour). The ServiceAccount is created if missing.
// Requests with the token are authenticated and authorized by the apiserver like any
// in-cluster workload's, so RBAC applies to them for real.
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating ServiceAccount %s/%s: %w", namespace, name, err)
	}
	ttl := int64(time.Hour / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// CreateNamespace creates a namespace named after the test, unique in the cluster, and
// deletes it when the test ends. In ModeAPI no controller finalizes namespaces, so the
// deletion only marks it Terminating; names never collide because of the suffix.
func (c *Cluster) CreateNamespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 50 {
		base = strings.TrimRight(base[:50], "-")
	}
	name := base + "-" + randomToken()[:6]
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// RunMain is for a package's TestMain: it starts one cluster for the whole package,
// hands it to set, runs the tests, stops the cluster and exits with the tests' code.
// The startup time is printed. When the tests fail, the cluster's files (component
// logs) are kept and their path printed.
func RunMain(m *testing.M, opts Options, set func(*Cluster)) {
	os.Exit(runMain(m, opts, set))
}

func runMain(m *testing.M, opts Options, set func(*Cluster)) int {
	c, err := Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	fmt.Printf("testenv: cluster %s (%s mode) started in %s\n", c.Name(), c.Mode(), c.StartupDuration().Round(time.Millisecond))
	set(c)
	code := m.Run()
	if code != 0 && c.ownDir {
		c.opts.KeepDir = true
		fmt.Printf("testenv: tests failed; cluster files and logs kept in %s\n", c.Dir())
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
