/* A stand-in for bcryptprimitives.dll, which Debian 12's Wine 8 lacks: every Rust program for
   Windows imports ProcessPrng from it (std's random numbers), and does not start without it.
   .ci/windows-smoke.sh builds it with mingw and puts it beside xtask.exe. The random bytes come
   from advapi32's RtlGenRandom (exported as SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a 32-bit length. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
