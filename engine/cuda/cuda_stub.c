// cuda_stub.c: the CUDA backend of a build without nvcc. The core library always dispatches
// PB_DEVICE_CUDA to pb_cuda_backend(); which backend that is gets decided at link time
// (CMakeLists.txt): the real one (engine/cuda/*.cu, nvcc), the emulated one for tests
// (tests/cudaemu), or this stub, whose init fails with a clear message.
// defines: pb_cuda_backend
#include "../backend.h"

static pb_status stub_init(pb_engine *e, char *err, size_t errlen) {
    (void)e;
    return pb_errf(PB_ERR_UNSUPPORTED, err, errlen,
                   "device 'cuda' is not available: this binary was built without CUDA "
                   "(rebuild with nvcc on PATH and -DPB_CUDA=ON)");
}

static void stub_free_state(pb_engine *e) { (void)e; }

// Only init and free_state are ever called: init fails, so no engine exists to call the rest.
static const pb_backend stub_backend = {.name = "cuda", .init = stub_init,
                                        .free_state = stub_free_state};

const pb_backend *pb_cuda_backend(void) { return &stub_backend; }
