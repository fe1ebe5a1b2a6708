package chart

import (
	"fmt"
	"os"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

// ReadCredentials reads a credentials file: a YAML mapping of host
// ("charts.example.com", "ghcr.io:443") to {username, password}, the format of the
// agent's --chart-credentials-file and outpost diff's. Errors name the file, never
// its content.
func ReadCredentials(file string) (map[string]Credential, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading chart credentials %s: %w", file, err)
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, fmt.Errorf("chart credentials %s is empty", file)
	}
	var raw map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := sigsyaml.UnmarshalStrict(data, &raw); err != nil {
		return nil, fmt.Errorf("chart credentials %s: not a mapping of host to {username, password}: %w", file, err)
	}
	out := make(map[string]Credential, len(raw))
	for host, c := range raw {
		out[host] = Credential{Username: c.Username, Password: c.Password}
	}
	return out, nil
}

// FileCredentials returns a FetcherConfig.Credentials that reads file at each call,
// so that a rotated credential (a mounted Secret) takes effect without a restart.
func FileCredentials(file string) func(host string) (Credential, bool, error) {
	return func(host string) (Credential, bool, error) {
		creds, err := ReadCredentials(file)
		if err != nil {
			return Credential{}, false, err
		}
		c, ok := creds[host]
		return c, ok, nil
	}
}

// StaticCredentials returns a FetcherConfig.Credentials answering from creds.
func StaticCredentials(creds map[string]Credential) func(host string) (Credential, bool, error) {
	return func(host string) (Credential, bool, error) {
		c, ok := creds[host]
		return c, ok, nil
	}
}
