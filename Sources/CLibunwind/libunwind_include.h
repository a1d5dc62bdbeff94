// libunwind, for the oracle only (the embedder library never links it).
#include <libunwind.h>
