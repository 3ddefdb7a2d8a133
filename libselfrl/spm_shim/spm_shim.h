// C interface of the selfrl_spm module, the only code that touches libsentencepiece.
// libselfrl loads the module with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) so that sentencepiece's
// embedded protobuf never meets LibTorch's libprotobuf (see libselfrl/CMakeLists.txt).
// Every function returns 0 on success; on failure it writes a message into err[errlen].
#pragma once
#include <stddef.h>

extern "C" {
int selfrl_spm_load(const char* path, void** model, char* err, size_t errlen);
void selfrl_spm_free(void* model);
int selfrl_spm_encode(void* model, const char* text, size_t len, int** ids, size_t* n, char* err, size_t errlen);
int selfrl_spm_decode(void* model, const int* ids, size_t n, char** text, size_t* len, char* err, size_t errlen);
void selfrl_spm_release(void* buffer);  // frees ids / text returned above
int selfrl_spm_piece_size(void* model);
// Writes the piece into a malloc'd buffer released with selfrl_spm_release.
int selfrl_spm_id_to_piece(void* model, int id, char** piece, size_t* len);
int selfrl_spm_piece_to_id(void* model, const char* piece, size_t len);
// kind: 0 unk, 1 bos, 2 eos, 3 pad
int selfrl_spm_special_id(void* model, int kind);
// 1 when the id is a control / unknown / byte piece (not normal text), else 0.
int selfrl_spm_is_control(void* model, int id);
int selfrl_spm_is_byte(void* model, int id);
int selfrl_spm_train(const char* args, char* err, size_t errlen);
}
