package main

import (
	"fmt"
	"testing"
)

func TestFifths(t *testing.T) {
	if got := fifths([]int64{1, 2, 3, 4}); got != nil {
		t.Fatalf("four seconds gave %v", got)
	}
	// Eleven seconds: fifths of 2, 2, 2, 2 and 3 seconds.
	got := fifths([]int64{10, 10, 20, 20, 30, 30, 40, 40, 50, 50, 20})
	if fmt.Sprint(got) != "[10 20 30 40 40]" {
		t.Fatalf("fifths %v", got)
	}
}
