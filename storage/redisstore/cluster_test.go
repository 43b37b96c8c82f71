package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyid/latchkey/internal/testenv"
	"github.com/latchkeyid/latchkey/storage"
	"github.com/latchkeyid/latchkey/storage/conformance"
	"github.com/latchkeyid/latchkey/storage/redisstore"
)

// TestEphemeralCluster runs the conformance suite against a throwaway
// three-node Redis Cluster, so every command and script is proven to touch
// only one slot.
func TestEphemeralCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	addrs := startCluster(t, 3)
	conformance.RunEphemeral(t, func(t *testing.T) storage.Ephemeral {
		return openRedis(t, redisstore.Options{Addrs: addrs, Prefix: "lktest:" + testenv.RandomSuffix(t, 6) + ":"})
	})
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1. There is a
// small window between closing the listeners and the server binding them.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startCluster starts n redis-server processes in cluster mode, joins them
// into one cluster with redis-cli, and stops them (by PID) when t ends.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	server := testenv.Program(t, "redis-server")
	cli := testenv.Program(t, "redis-cli")
	dir := t.TempDir()
	ports := freePorts(t, 2*n) // client port and cluster bus port per node
	addrs := make([]string, n)
	for i := range n {
		port, bus := ports[2*i], ports[2*i+1]
		addrs[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
		if err != nil {
			t.Fatalf("create log: %v", err)
		}
		t.Cleanup(func() { _ = logf.Close() })
		cmd := exec.Command(server,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir,
			"--cluster-enabled", "yes",
			"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port),
			"--cluster-port", strconv.Itoa(bus),
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server on %s: %v", addrs[i], err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	for _, a := range addrs {
		waitFor(t, 5*time.Second, "redis-server at "+a+" to answer PING", func(ctx context.Context) error {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1, DialerRetries: 1})
			defer c.Close()
			return c.Ping(ctx).Err()
		})
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		waitFor(t, 10*time.Second, "node "+a+" to report cluster_state:ok", func(ctx context.Context) error {
			c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
			defer c.Close()
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return fmt.Errorf("cluster not ready")
			}
			return nil
		})
	}
	return addrs
}

// waitFor polls check until it returns nil or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, check func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", limit, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
