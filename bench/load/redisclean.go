package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisClean (load redisclean ADDRS PREFIX) deletes the keys a bench run
// left under its own prefix (sessions live for days).
func redisClean(args []string) error {
	if len(args) != 2 || !strings.HasPrefix(args[1], "lkbench:") {
		return errors.New("usage: load redisclean ADDR[,ADDR...] lkbench:PREFIX:")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: strings.Split(args[0], ",")})
	defer c.Close()
	iter := c.Scan(ctx, 0, args[1]+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := c.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := c.Del(ctx, batch...).Err(); err != nil {
			return err
		}
	}
	return iter.Err()
}
