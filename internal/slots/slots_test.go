package slots

import "testing"

func TestSlots(t *testing.T) {
	s := New(2)
	first, second, third := s.Acquire("a"), s.Acquire("a"), s.Acquire("a")
	if !first || !second || third {
		t.Fatal("want two slots for a, then none")
	}
	if !s.Acquire("b") {
		t.Fatal("b is limited by a's slots")
	}
	s.Release("a")
	if !s.Acquire("a") {
		t.Fatal("a released slot is not available again")
	}
	s.Release("a")
	s.Release("a")
	s.Release("b")
	if len(s.held) != 0 {
		t.Errorf("held %v after releasing every slot, want none", s.held)
	}
}
