package pgtest

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

var srv *Server

func TestMain(m *testing.M) { os.Exit(RunMain(m, &srv)) }

// TestNewDatabase: each database is empty, separate and reachable.
func TestNewDatabase(t *testing.T) {
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	if a == b {
		t.Fatalf("two tests got one database %s", a)
	}
	c, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	if _, err := c.Exec(t.Context(), `CREATE TABLE x (i int)`); err != nil {
		t.Fatal(err)
	}
	c2, err := pgx.Connect(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(t.Context())
	var n int
	if err := c2.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees the first's table: %d, %v", n, err)
	}
}
