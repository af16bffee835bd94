/* bcryptprimitives.dll stub for Wine < 9, built by scripts/test-windows.sh with mingw-w64.
 * Go >= 1.22 loads bcryptprimitives.dll!ProcessPrng at start-up and aborts when it is
 * missing ("fatal error: bcryptprimitives.dll not found"); Wine 8 (Debian 12) lacks it.
 * This fills the buffer from advapi32!SystemFunction036 (RtlGenRandom), the OS CSPRNG. */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE h, DWORD reason, LPVOID reserved) {
    (void)h; (void)reason; (void)reserved;
    return TRUE;
}
