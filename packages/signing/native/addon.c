/*
 * Node-API binding for ed25519_verify.c.
 *
 *   keyTable(publicKey: Uint8Array) -> external | null
 *   verify(keyTable: external, message: Uint8Array, signature: Uint8Array) -> boolean
 *   sha512(data: Uint8Array) -> Uint8Array
 *
 * Each Node environment (main thread or worker) keeps its own base-point table, so no
 * state is shared between threads.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "ed25519_verify.h"

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return NULL;               \
  } while (0)

static void free_table(napi_env env, void *data, void *hint) {
  (void)hint;
  int64_t adjusted;
  napi_adjust_external_memory(env, -(int64_t)myelin_ed25519_table_bytes(data), &adjusted);
  myelin_ed25519_table_free(data);
}

static void free_base(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  myelin_ed25519_table_free(data);
}

/*
 * The bytes of a Uint8Array argument, or NULL (with a TypeError pending) if it is not one.
 * Node-API passes missing arguments as undefined, which this refuses too.
 */
static const uint8_t *bytes_of(napi_env env, napi_value value, size_t *length, const char *what) {
  napi_typedarray_type type;
  void *data = NULL;
  bool is_typed_array = false;
  if (napi_is_typedarray(env, value, &is_typed_array) != napi_ok || !is_typed_array ||
      napi_get_typedarray_info(env, value, &type, length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  static const uint8_t empty = 0;
  return data != NULL ? data : &empty;
}

static napi_value key_table(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  size_t length = 0;
  const uint8_t *key = bytes_of(env, argv[0], &length, "publicKey must be a Uint8Array");
  if (key == NULL) return NULL;
  if (length != 32) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  myelin_ed25519_table *table = myelin_ed25519_key_table(key);
  if (table == NULL) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  if (napi_create_external(env, table, free_table, NULL, &result) != napi_ok) {
    myelin_ed25519_table_free(table);
    return NULL;
  }
  int64_t adjusted;
  napi_adjust_external_memory(env, (int64_t)myelin_ed25519_table_bytes(table), &adjusted);
  return result;
}

static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  myelin_ed25519_table *base, *table = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&base));
  napi_valuetype type = napi_undefined;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, argv[0], (void **)&table) != napi_ok) {
    napi_throw_type_error(env, NULL, "verify(keyTable, message, signature) needs a key table");
    return NULL;
  }
  size_t message_length = 0, signature_length = 0;
  const uint8_t *message = bytes_of(env, argv[1], &message_length, "message must be a Uint8Array");
  if (message == NULL) return NULL;
  const uint8_t *signature = bytes_of(env, argv[2], &signature_length, "signature must be a Uint8Array");
  if (signature == NULL) return NULL;
  int ok = signature_length == 64 && myelin_ed25519_verify(base, table, message, message_length, signature);
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}

static napi_value sha512(napi_env env, napi_callback_info info) {
  size_t argc = 1, length = 0;
  napi_value argv[1], buffer, result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const uint8_t *data = bytes_of(env, argv[0], &length, "data must be a Uint8Array");
  if (data == NULL) return NULL;
  void *out = NULL;
  CHECK(napi_create_arraybuffer(env, 64, &out, &buffer));
  myelin_sha512(out, data, length);
  CHECK(napi_create_typedarray(env, napi_uint8_array, 64, buffer, 0, &result));
  return result;
}

NAPI_MODULE_INIT() {
  myelin_ed25519_table *base = myelin_ed25519_base_table();
  if (base == NULL) {
    napi_throw_error(env, NULL, "out of memory building the Ed25519 base table");
    return NULL;
  }
  napi_value fn, holder;
  /* Ties the base table's lifetime to the module's exports object. */
  CHECK(napi_create_object(env, &holder));
  CHECK(napi_wrap(env, holder, base, free_base, NULL, NULL));
  CHECK(napi_set_named_property(env, exports, "_base", holder));
  CHECK(napi_create_function(env, "keyTable", NAPI_AUTO_LENGTH, key_table, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "keyTable", fn));
  CHECK(napi_create_function(env, "verify", NAPI_AUTO_LENGTH, verify, base, &fn));
  CHECK(napi_set_named_property(env, exports, "verify", fn));
  CHECK(napi_create_function(env, "sha512", NAPI_AUTO_LENGTH, sha512, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "sha512", fn));
  return exports;
}
