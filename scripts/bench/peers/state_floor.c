/* state_floor.c: the floor of `actor.spawn(f):wait()` (actors.lua, row
 * actors_spawn): what a plain Lua state with its standard library costs to
 * make, run an empty function in, and close, with nothing of lugo's, on
 * THREADS threads at once (default 2), N states in all (default 20000).
 * Built by peers.sh against Debian's liblua5.4-dev (benchmarks only).
 * Prints `PEER name=actors_spawn metric=rate value=<states/s> unit=actors/s`. */
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *work(void *arg) {
  int n = *(int *)arg;
  for (int i = 0; i < n; i++) {
    lua_State *L = luaL_newstate();
    if (L == NULL) abort();
    luaL_openlibs(L);
    if (luaL_loadstring(L, "return function() end") != LUA_OK) abort();
    lua_call(L, 0, 1);
    lua_call(L, 0, 0);
    lua_close(L);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  int n = argc > 2 ? atoi(argv[2]) : 20000;
  if (threads < 1 || threads > 64 || n < threads) return 2;
  pthread_t th[64];
  int per = n / threads;
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int t = 0; t < threads; t++) pthread_create(&th[t], NULL, work, &per);
  for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("PEER name=actors_spawn metric=rate value=%.0f unit=actors/s\n", per * threads / s);
  return 0;
}
