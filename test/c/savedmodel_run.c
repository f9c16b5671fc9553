/*
 * Save in one language, load in another: runs a SavedModel through TensorFlow's C API, the way a
 * C or C++ service would, with no Python anywhere. test/c-api.peer.test.ts compiles it against
 * the headers and libtensorflow_cc.so.2 the tensorflow wheel ships and checks that it prints, for
 * a SavedModel modelbridge wrote from each source format, the outputs modelbridge computes.
 *
 *   savedmodel_run DIR INPUT OUTPUT DIMS VALUES...
 *     DIR     the SavedModel folder (tag set "serve")
 *     INPUT   the signature input's tensor, e.g. x:0 (modelbridge inspect shows it)
 *     OUTPUT  the signature output's tensor, e.g. y:0
 *     DIMS    the float32 input's shape, comma-separated, e.g. 4,2
 *     VALUES  its elements in row-major order
 *   prints {"shape": [...], "values": [...]} (float32 output, values with 9 significant digits)
 *
 * Build: cc savedmodel_run.c -I$TF/include -L$TF -l:libtensorflow_cc.so.2
 *          -l:libtensorflow_framework.so.2 -Wl,-rpath,$TF    (TF: the wheel's tensorflow folder)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow/c/c_api.h"

static void check(TF_Status *status, const char *what) {
  if (TF_GetCode(status) != TF_OK) {
    fprintf(stderr, "error: %s: %s\n", what, TF_Message(status));
    exit(1);
  }
}

static void free_data(void *data, size_t length, void *arg) {
  (void)length;
  (void)arg;
  free(data);
}

/* "name:index" -> the graph operation's output. */
static TF_Output output_of(TF_Graph *graph, const char *spec) {
  char name[1024];
  const char *colon = strrchr(spec, ':');
  size_t length = colon ? (size_t)(colon - spec) : strlen(spec);
  if (length >= sizeof name) {
    fprintf(stderr, "error: tensor name too long: %s\n", spec);
    exit(2);
  }
  memcpy(name, spec, length);
  name[length] = '\0';
  TF_Output out = {TF_GraphOperationByName(graph, name), colon ? atoi(colon + 1) : 0};
  if (out.oper == NULL) {
    fprintf(stderr, "error: no operation %s in the SavedModel's graph\n", name);
    exit(1);
  }
  return out;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s DIR INPUT OUTPUT DIMS VALUES...\n", argv[0]);
    return 2;
  }
  int64_t dims[16];
  int rank = 0;
  size_t count = 1;
  for (char *p = argv[4]; *p && rank < 16;) {
    char *end;
    dims[rank] = strtoll(p, &end, 10);
    if (end == p || dims[rank] < 0) {
      fprintf(stderr, "error: DIMS must be whole numbers separated by commas, not %s\n", argv[4]);
      return 2;
    }
    count *= (size_t)dims[rank++];
    p = *end == ',' ? end + 1 : end;
  }
  if ((size_t)(argc - 5) != count) {
    fprintf(stderr, "error: shape %s needs %zu values, got %d\n", argv[4], count, argc - 5);
    return 2;
  }
  float *data = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; i++) data[i] = strtof(argv[5 + i], NULL);

  TF_Status *status = TF_NewStatus();
  TF_Graph *graph = TF_NewGraph();
  TF_SessionOptions *options = TF_NewSessionOptions();
  const char *tags[] = {"serve"};
  TF_Session *session = TF_LoadSessionFromSavedModel(options, NULL, argv[1], tags, 1, graph, NULL, status);
  check(status, "TF_LoadSessionFromSavedModel");

  TF_Output input = output_of(graph, argv[2]);
  TF_Output output = output_of(graph, argv[3]);
  TF_Tensor *in = TF_NewTensor(TF_FLOAT, dims, rank, data, count * sizeof(float), free_data, NULL);
  TF_Tensor *out = NULL;
  TF_SessionRun(session, NULL, &input, &in, 1, &output, &out, 1, NULL, 0, NULL, status);
  check(status, "TF_SessionRun");
  if (TF_TensorType(out) != TF_FLOAT) {
    fprintf(stderr, "error: the output is not float32\n");
    return 1;
  }

  const float *values = TF_TensorData(out);
  size_t n = TF_TensorElementCount(out);
  printf("{\"shape\": [");
  for (int d = 0; d < TF_NumDims(out); d++) printf("%s%lld", d ? ", " : "", (long long)TF_Dim(out, d));
  printf("], \"values\": [");
  for (size_t i = 0; i < n; i++) printf("%s%.9g", i ? ", " : "", values[i]);
  printf("]}\n");

  TF_DeleteTensor(in);
  TF_DeleteTensor(out);
  TF_CloseSession(session, status);
  TF_DeleteSession(session, status);
  TF_DeleteSessionOptions(options);
  TF_DeleteGraph(graph);
  TF_DeleteStatus(status);
  return 0;
}
