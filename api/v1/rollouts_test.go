package v1

import (
	"strings"
	"testing"
)

func TestIsRolloutID(t *testing.T) {
	for id, want := range map[string]bool{
		"web-tn4q1c8a3f":                       true,
		"a":                                    true,
		"":                                     false,
		"-web":                                 false,
		"web-":                                 false,
		"Web-1":                                false,
		"web_1":                                false,
		"web/1":                                false,
		"../x":                                 false,
		strings.Repeat("a", MaxRolloutIDLen):   true,
		strings.Repeat("a", MaxRolloutIDLen+1): false,
	} {
		if got := IsRolloutID(id); got != want {
			t.Errorf("IsRolloutID(%q) = %v, want %v", id, got, want)
		}
	}
}
